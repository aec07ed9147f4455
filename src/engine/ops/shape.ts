// Shape ops: reshape (a view), and permute / slice / concat / broadcastTo, which copy into a new
// contiguous tensor with one strided-copy kernel. Every tensor in Loom is contiguous.

import { record } from '../autograd.js';
import { Tensor, empty, shapeSize, shapeString, type Shape } from '../tensor.js';
import { broadcastShapes, commonBackend, contiguousStrides, fail, normAxis, padShape, sameShape } from './check.js';
import { broadcastRaw, sumToRaw } from './reduce.js';

/** A view with a new shape over the same storage; one size may be -1 (inferred). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const resolved = [...shape];
  const unknown = resolved.indexOf(-1);
  if (unknown >= 0) {
    const known = resolved.reduce((n, d, i) => (i === unknown ? n : n * d), 1);
    if (known === 0 || x.size % known !== 0) fail('reshape', `cannot reshape ${shapeString(x.shape)} to ${shapeString(shape)}`);
    resolved[unknown] = x.size / known;
  }
  if (shapeSize(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    fail('reshape', `cannot reshape ${shapeString(x.shape)} (${x.size} elements) to ${shapeString(shape)}`);
  }
  const out = new Tensor(x.buf().retain(), resolved, x.dtype);
  const inShape = x.shape;
  return record(out, 'reshape', [x], [], (dy) => [new Tensor(dy.buf().retain(), inShape, dy.dtype)]);
}

/** Inserts a size-1 axis at `axis`. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Removes size-1 axes (all of them, or the one given). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) fail('squeeze', `axis ${axis} of ${shapeString(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, [...x.shape.slice(0, a), ...x.shape.slice(a + 1)]);
}

function permuteCopy(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]!);
  const src = contiguousStrides(x.shape);
  const out = empty(shape, x.dtype, x.backend);
  x.backend.stridedCopy(x.storage, 0, perm.map((p) => src[p]!), shape, out.storage, 0, contiguousStrides(shape));
  return out;
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank) fail('permute', `perm [${perm.join(',')}] has ${perm.length} axes, tensor ${shapeString(x.shape)} has ${x.rank}`);
  const p = perm.map((a) => normAxis('permute', a, x.rank));
  if (new Set(p).size !== p.length) fail('permute', `perm [${perm.join(',')}] repeats an axis`);
  const out = permuteCopy(x, p);
  const inverse = new Array<number>(p.length);
  p.forEach((a, i) => (inverse[a] = i));
  return record(out, 'permute', [x], [], (dy) => [permuteCopy(dy, inverse)]);
}

/** Swaps two axes. */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  const a = normAxis('transpose', axis0, x.rank);
  const b = normAxis('transpose', axis1, x.rank);
  const perm = [...Array(x.rank).keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Elements start..end-1 along one axis (negative indices count from the end, like Python). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis('slice', axis, x.rank);
  const n = x.shape[a]!;
  const clamp = (i: number) => Math.min(n, Math.max(0, i < 0 ? i + n : i));
  const s = clamp(start);
  const e = Math.max(s, clamp(end ?? n));
  const shape = [...x.shape];
  shape[a] = e - s;
  const strides = contiguousStrides(x.shape);
  const out = empty(shape, x.dtype, x.backend);
  x.backend.stridedCopy(x.storage, s * strides[a]!, strides, shape, out.storage, 0, contiguousStrides(shape));
  const inShape = x.shape;
  return record(out, 'slice', [x], [], (dy) => {
    const g = empty(inShape, 'f32', dy.backend);
    dy.backend.fill(g.storage, 0);
    dy.backend.stridedCopy(dy.storage, 0, contiguousStrides(dy.shape), dy.shape, g.storage, s * strides[a]!, strides);
    return [g];
  });
}

/** Joins tensors along an axis; all other sizes must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) fail('concat', 'needs at least one tensor');
  const first = xs[0]!;
  const a = normAxis('concat', axis, first.rank);
  const backend = commonBackend('concat', ...xs);
  for (const x of xs) {
    if (x.dtype !== first.dtype) fail('concat', `dtypes differ: ${first.dtype} and ${x.dtype}`);
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      fail('concat', `shapes ${shapeString(first.shape)} and ${shapeString(x.shape)} differ outside axis ${axis}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = xs.reduce((n, x) => n + x.shape[a]!, 0);
  const out = empty(shape, first.dtype, backend);
  const outStrides = contiguousStrides(shape);
  const offsets: number[] = [];
  let offset = 0;
  for (const x of xs) {
    offsets.push(offset);
    backend.stridedCopy(x.storage, 0, contiguousStrides(x.shape), x.shape, out.storage, offset * outStrides[a]!, outStrides);
    offset += x.shape[a]!;
  }
  const shapes = xs.map((x) => x.shape);
  return record(out, 'concat', xs, [], (dy) =>
    shapes.map((s, i) => {
      const g = empty(s, 'f32', dy.backend);
      dy.backend.stridedCopy(dy.storage, offsets[i]! * outStrides[a]!, outStrides, s, g.storage, 0, contiguousStrides(s));
      return g;
    }),
  );
}

/** Repeats size-1 axes (and adds leading axes) to reach `shape`, NumPy broadcasting rules. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes('broadcastTo', x.shape, shape);
  if (!sameShape(target, shape)) fail('broadcastTo', `${shapeString(x.shape)} cannot broadcast to ${shapeString(shape)}`);
  const out = broadcastRaw(x, padShape(x.shape, shape.length), shape);
  const inShape = x.shape;
  return record(out, 'broadcastTo', [x], [], (dy) => [sumToRaw(dy, inShape)]);
}
