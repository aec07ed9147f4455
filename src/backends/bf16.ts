// bf16 <-> f32 for one value on the host: bf16 is the top 16 bits of an f32. Shared by the
// reference kernels and the engine's host conversions, so both round the same way.

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bf16 bit pattern of a float32 value, rounding to nearest even; NaN stays a (quiet) NaN. */
export function bf16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 value of a bf16 bit pattern (exact). */
export function bf16Value(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0]!;
}
