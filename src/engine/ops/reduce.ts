// Reductions: sum, mean and max over any set of axes, and sumTo (the adjoint of broadcasting).
// Adjacent axes reduce in one kernel call over an [outer, r, inner] view; scattered axes are moved last first.

import type { Backend } from '../../backends/backend.js';
import { record } from '../autograd.js';
import { Tensor, empty, shapeSize, type Shape } from '../tensor.js';
import { checkDType, contiguousStrides, fail, normAxis, padShape, sameShape } from './check.js';

export interface ReduceOptions {
  keepDims?: boolean;
}

function normAxes(op: string, axes: number | readonly number[] | null | undefined, rank: number): number[] {
  if (axes === null || axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const set = new Set(list.map((a) => normAxis(op, a, rank)));
  if (set.size !== list.length) fail(op, `axis listed twice in [${list.join(',')}]`);
  return [...set].sort((a, b) => a - b);
}

function outShape(shape: Shape, axes: number[], keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

/** Copies x with the given axes permuted (raw, no autograd). */
function permuteRaw(backend: Backend, x: Tensor, perm: number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]!);
  const srcStrides = contiguousStrides(x.shape);
  const out = empty(shape, x.dtype, backend);
  backend.stridedCopy(x.storage, 0, perm.map((p) => srcStrides[p]!), shape, out.storage, 0, contiguousStrides(shape));
  return out;
}

/** Raw reduction (no autograd). Returns values and, for max, argmax over the flattened reduced axes. */
function reduceRaw(op: 'sum' | 'max', x: Tensor, axes: number[]): { values: Tensor; argmax: Tensor | null; perm: number[] | null } {
  const backend = x.backend;
  const rank = x.rank;
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1]! + 1);
  let src = x;
  let perm: number[] | null = null;
  let first = axes[0] ?? rank;
  let last = axes[axes.length - 1] ?? rank - 1;
  if (!contiguous) {
    perm = [...[...Array(rank).keys()].filter((a) => !axes.includes(a)), ...axes];
    src = permuteRaw(backend, x, perm);
    first = rank - axes.length;
    last = rank - 1;
  }
  const shape = src.shape;
  const outer = shapeSize(shape.slice(0, first));
  const r = axes.length === 0 ? 1 : shapeSize(shape.slice(first, last + 1));
  const inner = shapeSize(shape.slice(last + 1));
  const values = empty([outer * inner], 'f32', backend);
  const argmax = op === 'max' ? empty([outer * inner], 'i32', backend) : null;
  if (op === 'max' && r === 0) fail('max', 'cannot take the max over an empty axis');
  backend.reduce(op, src.storage, outer, r, inner, values.storage, argmax?.storage);
  if (src !== x) src.dispose();
  return { values, argmax, perm };
}

function reshapeHandle(t: Tensor, shape: Shape): Tensor {
  const v = new Tensor(t.buf().retain(), shape, t.dtype);
  t.dispose();
  return v;
}

export function sum(x: Tensor, axes?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  checkDType('sum', 'x', x, 'f32');
  const ax = normAxes('sum', axes, x.rank);
  const shape = outShape(x.shape, ax, options.keepDims ?? false);
  const out = reshapeHandle(reduceRaw('sum', x, ax).values, shape);
  const inShape = x.shape;
  return record(out, 'sum', [x], [], (dy) => [broadcastRaw(dy, outShape(inShape, ax, true), inShape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  checkDType('mean', 'x', x, 'f32');
  const ax = normAxes('mean', axes, x.rank);
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  const shape = outShape(x.shape, ax, options.keepDims ?? false);
  const out = reshapeHandle(reduceRaw('sum', x, ax).values, shape);
  out.backend.unary('scale', out.storage, out.storage, 1 / count);
  const inShape = x.shape;
  return record(out, 'mean', [x], [], (dy) => {
    const g = broadcastRaw(dy, outShape(inShape, ax, true), inShape);
    g.backend.unary('scale', g.storage, g.storage, 1 / count);
    return [g];
  });
}

/** Max over axes (torch.amax); the gradient goes to the first position that holds the max. */
export function max(x: Tensor, axes?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  checkDType('max', 'x', x, 'f32');
  const ax = normAxes('max', axes, x.rank);
  const shape = outShape(x.shape, ax, options.keepDims ?? false);
  const { values, argmax, perm } = reduceRaw('max', x, ax);
  const out = reshapeHandle(values, shape);
  const inShape = x.shape;
  const rank = x.rank;
  const arg = argmax!;
  const result = record(out, 'max', [x], [arg], (dy, [am]) => {
    const backend = dy.backend;
    // Scatter dy to the argmax positions of the (possibly permuted) input layout.
    const srcShape = perm ? perm.map((p) => inShape[p]!) : [...inShape];
    const first = perm ? rank - ax.length : (ax[0] ?? rank);
    const last = perm ? rank - 1 : (ax[ax.length - 1] ?? rank - 1);
    const outer = shapeSize(srcShape.slice(0, first));
    const r = ax.length === 0 ? 1 : shapeSize(srcShape.slice(first, last + 1));
    const inner = shapeSize(srcShape.slice(last + 1));
    const g = empty(srcShape, 'f32', backend);
    backend.maxBackward(dy.storage, am!.storage, g.storage, outer, r, inner);
    if (!perm) return [g];
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    const back = permuteRaw(backend, g, inverse);
    g.dispose();
    return [back];
  });
  arg.dispose();
  return result;
}

/**
 * @internal Broadcasts a raw tensor from `fromShape` (same rank as `toShape`, size-1 axes expand) to
 * `toShape` with one strided copy; no autograd.
 */
export function broadcastRaw(x: Tensor, fromShape: Shape, toShape: Shape): Tensor {
  const src = padShape(fromShape, toShape.length);
  const strides = contiguousStrides(src).map((s, i) => (src[i] === 1 && toShape[i] !== 1 ? 0 : s));
  const out = empty(toShape, x.dtype, x.backend);
  x.backend.stridedCopy(x.storage, 0, strides, toShape, out.storage, 0, contiguousStrides(toShape));
  return out;
}

/**
 * @internal Sums a raw tensor of shape `fromShape` down to `toShape` (the inverse of broadcasting);
 * returns a new tensor (a copy when nothing is summed).
 */
export function sumToRaw(x: Tensor, toShape: Shape): Tensor {
  const rank = x.rank;
  const target = padShape(toShape, rank);
  const axes = target.flatMap((d, i) => (d === 1 && x.shape[i] !== 1 ? [i] : []));
  const lead = rank - toShape.length;
  for (let i = 0; i < lead; i++) if (!axes.includes(i)) axes.push(i);
  axes.sort((a, b) => a - b);
  if (axes.length === 0) {
    if (sameShape(x.shape, toShape)) return reshapeHandle(x.detach(), toShape);
  }
  const { values } = reduceRaw('sum', x, axes);
  return reshapeHandle(values, toShape);
}
