// Shared argument checks for the reference backend: storage unwrapping, dtype and size validation.
// Every kernel goes through these so that a bad call throws a clear Error instead of corrupting memory.

import type { DType, Storage } from '../backend.js';
import { host, type HostStorage } from '../host_memory.js';

export { host };

/** Throws unless `v` is a non-negative safe integer. */
export function dim(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} must be a non-negative integer, got ${v}`);
  return v;
}

function checked(s: Storage, dtype: DType, need: number, what: string): HostStorage {
  const h = host(s, what);
  if (h.dtype !== dtype) throw new Error(`${what}: expected ${dtype} storage, got ${h.dtype}`);
  if (h.numel < need) throw new Error(`${what}: storage has ${h.numel} elements, needs ${need}`);
  return h;
}

/** The Float32Array of an f32 storage holding at least `need` elements. */
export function f32(s: Storage, need: number, what: string): Float32Array {
  return checked(s, 'f32', need, what).data as Float32Array;
}

/** The Int32Array of an i32 storage holding at least `need` elements. */
export function i32(s: Storage, need: number, what: string): Int32Array {
  return checked(s, 'i32', need, what).data as Int32Array;
}

/** Product of a shape's extents (1 for rank 0), validating each extent. */
export function shapeNumel(shape: readonly number[], what: string): number {
  let n = 1;
  for (let d = 0; d < shape.length; d++) n *= dim(shape[d]!, `${what}[${d}]`);
  return n;
}
