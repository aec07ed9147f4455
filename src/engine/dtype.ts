// Host-side dtype helpers: bf16 <-> f32 bit conversion (bf16 is the top 16 bits of an f32),
// and the typed array constructor of each dtype.

import type { DType, HostArray } from '../backends/backend.js';
import { bf16Bits, bf16Value } from '../backends/bf16.js';

/** Rounds each f32 to bf16 (nearest, ties to even; NaN stays NaN). */
export function f32ToBf16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16Bits(src[i]!);
  return out;
}

/** Widens bf16 bit patterns to f32 exactly. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16Value(src[i]!);
  return out;
}

/** A host array of the dtype filled from plain numbers (bf16 rounded from f32). */
export function hostArrayFrom(dtype: DType, values: ArrayLike<number>): HostArray {
  switch (dtype) {
    case 'f32':
      return Float32Array.from(values);
    case 'i32': {
      const out = new Int32Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
          throw new Error(`i32 tensor: element ${i} is ${v}, not a 32-bit integer`);
        }
        out[i] = v;
      }
      return out;
    }
    case 'bf16':
      return f32ToBf16(values);
  }
}
