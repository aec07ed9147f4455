// Elementwise reference kernels: unary ops and their backward, broadcasting binary ops, dropout.
// All arithmetic is done in double and rounded once when stored; `out` may alias any input.

import type { BinaryOp, Storage, UnaryOp } from '../backend.js';
import { dropoutUniform } from '../backend.js';
import { f32, host, shapeNumel } from './common.js';
import { gelu, geluGrad, geluTanh, geluTanhGrad, sigmoid } from './math.js';

function sameSize(a: Storage, b: Storage, what: string): number {
  if (a.numel !== b.numel) throw new Error(`${what}: storages differ in size (${a.numel} vs ${b.numel})`);
  return a.numel;
}

function unaryFn(op: UnaryOp, p: number): (x: number) => number {
  switch (op) {
    case 'neg':
      return (x) => -x;
    case 'exp':
      return Math.exp;
    case 'log':
      return Math.log;
    case 'sqrt':
      return Math.sqrt;
    case 'tanh':
      return Math.tanh;
    case 'sigmoid':
      return sigmoid;
    case 'relu':
      return (x) => (x > 0 ? x : x <= 0 ? 0 : x); // NaN propagates
    case 'silu':
      return (x) => x * sigmoid(x);
    case 'gelu':
      return gelu;
    case 'gelu_tanh':
      return geluTanh;
    case 'pow':
      return (x) => Math.pow(x, p);
    case 'scale':
      return (x) => x * p;
    case 'add_scalar':
      return (x) => x + p;
    default:
      throw new Error(`unary: unknown op ${String(op)}`);
  }
}

export function unary(op: UnaryOp, x: Storage, out: Storage, param: number): void {
  const n = sameSize(x, out, `unary ${op}`);
  const xs = f32(x, n, `unary ${op} x`);
  const os = f32(out, n, `unary ${op} out`);
  const fn = unaryFn(op, param);
  for (let i = 0; i < n; i++) os[i] = fn(xs[i]!);
}

/** d op / dx at x, given y = op(x) (from the forward, already rounded to f32). */
function unaryGradFn(op: UnaryOp, p: number): (x: number, y: number) => number {
  switch (op) {
    case 'neg':
      return () => -1;
    case 'exp':
      return (_x, y) => y;
    case 'log':
      return (x) => 1 / x;
    case 'sqrt':
      return (_x, y) => 0.5 / y;
    case 'tanh':
      return (_x, y) => 1 - y * y;
    case 'sigmoid':
      return (_x, y) => y * (1 - y);
    case 'relu':
      return (x) => (x > 0 ? 1 : 0);
    case 'silu':
      return (x) => {
        const s = sigmoid(x);
        return s * (1 + x * (1 - s));
      };
    case 'gelu':
      return geluGrad;
    case 'gelu_tanh':
      return geluTanhGrad;
    case 'pow':
      // PyTorch: exponent 0 has zero gradient everywhere (no 0 * x^-1 = NaN at x = 0).
      if (p === 0) return () => 0;
      return (x) => p * Math.pow(x, p - 1);
    case 'scale':
      return () => p;
    case 'add_scalar':
      return () => 1;
    default:
      throw new Error(`unaryBackward: unknown op ${String(op)}`);
  }
}

export function unaryBackward(
  op: UnaryOp,
  x: Storage,
  y: Storage,
  dy: Storage,
  dx: Storage,
  param: number,
): void {
  const what = `unaryBackward ${op}`;
  const n = sameSize(x, dx, what);
  sameSize(y, dx, what);
  sameSize(dy, dx, what);
  const xs = f32(x, n, `${what} x`);
  const ys = f32(y, n, `${what} y`);
  const dys = f32(dy, n, `${what} dy`);
  const dxs = f32(dx, n, `${what} dx`);
  const grad = unaryGradFn(op, param);
  for (let i = 0; i < n; i++) dxs[i] = dys[i]! * grad(xs[i]!, ys[i]!);
}

/** Element strides of an input broadcast to outShape (0 along size-1 axes that are broadcast). */
function broadcastStrides(shape: readonly number[], outShape: readonly number[], what: string): number[] {
  const rank = outShape.length;
  if (shape.length !== rank) {
    throw new Error(`${what}: shape [${shape.join(', ')}] has rank ${shape.length}, output has rank ${rank}`);
  }
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    const n = shape[d]!;
    if (n !== outShape[d] && n !== 1) {
      throw new Error(`${what}: shape [${shape.join(', ')}] does not broadcast to [${outShape.join(', ')}]`);
    }
    strides[d] = n === 1 ? 0 : s;
    s *= n;
  }
  return strides;
}

export function binary(
  op: BinaryOp,
  a: Storage,
  aShape: readonly number[],
  b: Storage,
  bShape: readonly number[],
  out: Storage,
  outShape: readonly number[],
): void {
  const what = `binary ${op}`;
  const total = shapeNumel(outShape, `${what} outShape`);
  const as = f32(a, shapeNumel(aShape, `${what} aShape`), `${what} a`);
  const bs = f32(b, shapeNumel(bShape, `${what} bShape`), `${what} b`);
  const os = f32(out, total, `${what} out`);
  const aSt = broadcastStrides(aShape, outShape, `${what} a`);
  const bSt = broadcastStrides(bShape, outShape, `${what} b`);
  // Writing over an input that is read at broadcast positions would read already-written values.
  if ((host(out, what) === host(a, what) && aSt.some((s, d) => s === 0 && outShape[d]! > 1)) ||
      (host(out, what) === host(b, what) && bSt.some((s, d) => s === 0 && outShape[d]! > 1))) {
    throw new Error(`${what}: out may alias only an input that is not broadcast`);
  }
  if (total === 0) return;
  let f: (x: number, y: number) => number;
  switch (op) {
    case 'add':
      f = (x, y) => x + y;
      break;
    case 'sub':
      f = (x, y) => x - y;
      break;
    case 'mul':
      f = (x, y) => x * y;
      break;
    case 'div':
      f = (x, y) => x / y;
      break;
    default:
      throw new Error(`binary: unknown op ${String(op)}`);
  }
  const rank = outShape.length;
  if (rank === 0) {
    os[0] = f(as[0]!, bs[0]!);
    return;
  }
  // Odometer over all axes but the last; the last axis is the inner loop.
  const inner = outShape[rank - 1]!;
  const aStep = aSt[rank - 1]!;
  const bStep = bSt[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let ai = 0;
  let bi = 0;
  for (let o = 0; o < total; o += inner) {
    for (let j = 0, aj = ai, bj = bi; j < inner; j++, aj += aStep, bj += bStep) os[o + j] = f(as[aj]!, bs[bj]!);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      ai += aSt[d]!;
      bi += bSt[d]!;
      if (idx[d]! < outShape[d]!) break;
      ai -= aSt[d]! * idx[d]!;
      bi -= bSt[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
}

export function dropout(x: Storage, out: Storage, p: number, seed: number): void {
  const n = sameSize(x, out, 'dropout');
  const xs = f32(x, n, 'dropout x');
  const os = f32(out, n, 'dropout out');
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (p === 0) {
    if (os !== xs) os.set(xs);
    return;
  }
  const scale = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < n; i++) os[i] = dropoutUniform(seed, i) >= p ? xs[i]! * scale : 0;
}
