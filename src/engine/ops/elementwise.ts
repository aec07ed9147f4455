// Elementwise ops: broadcasting add/sub/mul/div, and unary math (exp, log, gelu, ...), each with
// its backward rule beside the forward. Scalars mix freely with tensors in the binary ops.

import type { BinaryOp, UnaryOp } from '../../backends/backend.js';
import { record } from '../autograd.js';
import { Tensor, empty } from '../tensor.js';
import { broadcastShapes, checkDType, commonBackend, padShape } from './check.js';
import { sumToRaw } from './reduce.js';

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, outShape: readonly number[]): Tensor {
  const backend = commonBackend(op, a, b);
  const out = empty(outShape, 'f32', backend);
  const rank = outShape.length;
  backend.binary(op, a.storage, padShape(a.shape, rank), b.storage, padShape(b.shape, rank), out.storage, outShape);
  return out;
}

/** A scalar operand as a rank-0 tensor on the other operand's backend. */
function asTensor(x: Tensor | number, like: Tensor): Tensor {
  if (typeof x !== 'number') return x;
  const t = empty([], 'f32', like.backend);
  t.backend.fill(t.storage, x);
  return t;
}

function binary(op: BinaryOp, aIn: Tensor | number, bIn: Tensor | number): Tensor {
  if (typeof aIn === 'number' && typeof bIn === 'number') throw new Error(`${op}: at least one operand must be a tensor`);
  const ref = typeof aIn === 'number' ? (bIn as Tensor) : aIn;
  // A scalar operand becomes a unary kernel when that is exact (x + c, x * c, x - c, x / c).
  if (typeof bIn === 'number' && op !== 'div') {
    if (op === 'add') return addScalar(aIn as Tensor, bIn);
    if (op === 'sub') return addScalar(aIn as Tensor, -bIn);
    if (op === 'mul') return scale(aIn as Tensor, bIn);
  }
  if (typeof aIn === 'number' && (op === 'add' || op === 'mul')) return binary(op, bIn, aIn);
  const a = asTensor(aIn, ref);
  const b = asTensor(bIn, ref);
  checkDType(op, 'a', a, 'f32');
  checkDType(op, 'b', b, 'f32');
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = binaryRaw(op, a, b, shape);
  const aShape = a.shape;
  const bShape = b.shape;
  const saved = op === 'mul' ? [a, b] : op === 'div' ? [b, out] : [];
  const result = record(out, op, [a, b], saved, (dy, s) => {
    switch (op) {
      case 'add':
        return [sumToRaw(dy, aShape), sumToRaw(dy, bShape)];
      case 'sub': {
        // sumToRaw may return a view of dy, which da shares: negate into a fresh tensor.
        const summed = sumToRaw(dy, bShape);
        const db = empty(bShape, 'f32', dy.backend);
        db.backend.unary('neg', summed.storage, db.storage, 0);
        summed.dispose();
        return [sumToRaw(dy, aShape), db];
      }
      case 'mul': {
        const [sa, sb] = s as [Tensor, Tensor];
        const ga = binaryRaw('mul', dy, sb, dy.shape);
        const gb = binaryRaw('mul', dy, sa, dy.shape);
        return [reduceTo(ga, aShape), reduceTo(gb, bShape)];
      }
      case 'div': {
        // y = a / b: da = dy / b, db = -dy * y / b
        const [sb, y] = s as [Tensor, Tensor];
        const ga = binaryRaw('div', dy, sb, dy.shape);
        const t = binaryRaw('mul', ga, y, dy.shape);
        t.backend.unary('neg', t.storage, t.storage, 0);
        return [reduceTo(ga, aShape), reduceTo(t, bShape)];
      }
    }
  });
  if (a !== aIn) a.dispose();
  if (b !== bIn) b.dispose();
  return result;
}

function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  const r = sumToRaw(g, shape);
  g.dispose();
  return r;
}

export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary('add', a, b);
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary('sub', a, b);
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary('mul', a, b);
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary('div', a, b);

function unary(op: UnaryOp, x: Tensor, param = 0): Tensor {
  checkDType(op, 'x', x, 'f32');
  const out = empty(x.shape, 'f32', x.backend);
  x.backend.unary(op, x.storage, out.storage, param);
  if (op === 'scale' || op === 'add_scalar' || op === 'neg') {
    return record(out, op, [x], [], (dy) => {
      const g = empty(dy.shape, 'f32', dy.backend);
      if (op === 'add_scalar') dy.backend.stridedCopy(dy.storage, 0, [1], [dy.size], g.storage, 0, [1]);
      else dy.backend.unary(op, dy.storage, g.storage, param);
      return [g];
    });
  }
  return record(out, op, [x], [x, out], (dy, [sx, sy]) => {
    const g = empty(dy.shape, 'f32', dy.backend);
    dy.backend.unaryBackward(op, sx!.storage, sy!.storage, dy.storage, g.storage, param);
    return [g];
  });
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
/** GELU; 'none' is the exact erf form (BERT), 'tanh' the approximation (GPT-2's gelu_new). */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor =>
  unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x);
export const pow = (x: Tensor, exponent: number): Tensor => unary('pow', x, exponent);
/** x * s */
export const scale = (x: Tensor, s: number): Tensor => unary('scale', x, s);
/** x + c */
export const addScalar = (x: Tensor, c: number): Tensor => unary('add_scalar', x, c);
