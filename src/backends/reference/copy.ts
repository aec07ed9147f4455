// Reference data movement: fill, dtype casts (f32<->bf16 round-to-nearest-even, f32->i32 truncation)
// and the general strided copy (any rank, zero strides broadcast, bounds checked up front).

import type { Storage } from '../backend.js';
import { bf16Bits, bf16Value } from '../bf16.js';
import { dim, host } from './common.js';

/** f32 -> i32 conversion: truncation toward zero, NaN -> 0, saturating at the i32 range. */
function toI32(x: number): number {
  if (x !== x) return 0;
  if (x >= 2147483647) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x);
}

export function fill(out: Storage, value: number): void {
  const h = host(out, 'fill');
  switch (h.dtype) {
    case 'f32':
      (h.data as Float32Array).fill(value);
      break;
    case 'i32':
      (h.data as Int32Array).fill(toI32(value));
      break;
    case 'bf16':
      (h.data as Uint16Array).fill(bf16Bits(value));
      break;
  }
}

export function cast(x: Storage, out: Storage): void {
  const src = host(x, 'cast x');
  const dst = host(out, 'cast out');
  if (src.numel !== dst.numel) throw new Error(`cast: sizes differ (${src.numel} vs ${dst.numel})`);
  const n = src.numel;
  if (src.dtype === dst.dtype) {
    if (src !== dst) (dst.data as Float32Array).set(src.data as Float32Array);
    return;
  }
  // Read element i of the source as a number (bf16 widened to f32 exactly).
  const s = src.data;
  const get: (i: number) => number = src.dtype === 'bf16' ? (i) => bf16Value(s[i]!) : (i) => s[i]!;
  const d = dst.data;
  switch (dst.dtype) {
    case 'f32':
      for (let i = 0; i < n; i++) d[i] = get(i);
      break;
    case 'i32':
      for (let i = 0; i < n; i++) d[i] = toI32(get(i));
      break;
    case 'bf16':
      // i32 -> bf16 goes through f32 first (as a C cast chain would).
      for (let i = 0; i < n; i++) d[i] = bf16Bits(Math.fround(get(i)));
      break;
  }
}

export function stridedCopy(
  src: Storage,
  srcOffset: number,
  srcStrides: readonly number[],
  shape: readonly number[],
  dst: Storage,
  dstOffset: number,
  dstStrides: readonly number[],
): void {
  const s = host(src, 'stridedCopy src');
  const d = host(dst, 'stridedCopy dst');
  if (s.dtype !== d.dtype) throw new Error(`stridedCopy: dtypes differ (${s.dtype} -> ${d.dtype})`);
  const rank = shape.length;
  if (srcStrides.length !== rank || dstStrides.length !== rank) {
    throw new Error(`stridedCopy: shape rank ${rank}, src strides ${srcStrides.length}, dst strides ${dstStrides.length}`);
  }
  let total = 1;
  for (let i = 0; i < rank; i++) total *= dim(shape[i]!, `stridedCopy shape[${i}]`);
  if (total === 0) return;
  // Reachable element range of each side must lie inside its storage.
  const bounds = (off: number, strides: readonly number[], numel: number, what: string): void => {
    if (!Number.isSafeInteger(off)) throw new Error(`stridedCopy: ${what} offset ${off} is not an integer`);
    let lo = off;
    let hi = off;
    for (let i = 0; i < rank; i++) {
      const st = strides[i]!;
      if (!Number.isSafeInteger(st)) throw new Error(`stridedCopy: ${what} stride ${st} is not an integer`);
      const span = (shape[i]! - 1) * st;
      if (span < 0) lo += span;
      else hi += span;
    }
    if (lo < 0 || hi >= numel) {
      throw new Error(`stridedCopy: ${what} elements [${lo}, ${hi}] fall outside storage of ${numel}`);
    }
  };
  bounds(srcOffset, srcStrides, s.numel, 'src');
  bounds(dstOffset, dstStrides, d.numel, 'dst');
  // Copying within one storage reads from a snapshot so overlapping ranges behave like a true copy.
  const from = s === d ? s.data.slice() : s.data;
  const to = d.data;
  if (rank === 0) {
    to[dstOffset] = from[srcOffset]!;
    return;
  }
  const inner = shape[rank - 1]!;
  const sStep = srcStrides[rank - 1]!;
  const dStep = dstStrides[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let si = srcOffset;
  let di = dstOffset;
  for (let done = 0; done < total; done += inner) {
    for (let j = 0, a = si, b = di; j < inner; j++, a += sStep, b += dStep) to[b] = from[a]!;
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      si += srcStrides[ax]!;
      di += dstStrides[ax]!;
      if (idx[ax]! < shape[ax]!) break;
      si -= srcStrides[ax]! * idx[ax]!;
      di -= dstStrides[ax]! * idx[ax]!;
      idx[ax] = 0;
    }
  }
}
