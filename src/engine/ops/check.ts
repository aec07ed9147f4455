// Validation shared by ops: every op checks shapes, dtypes and backends here before any kernel runs,
// so that a mistake reads as "matmul: a [2,3] and b [4,5] ..." rather than a corrupt result.

import type { Backend, DType } from '../../backends/backend.js';
import { Tensor, shapeString, type Shape } from '../tensor.js';

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export function fail(op: string, message: string): never {
  throw new ShapeError(`${op}: ${message}`);
}

export function checkDType(op: string, name: string, t: Tensor, dtype: DType): void {
  if (t.dtype !== dtype) fail(op, `${name} must be ${dtype}, got ${t.dtype} ${shapeString(t.shape)}`);
}

/** The backend all the tensors share (an error if they live on different ones). */
export function commonBackend(op: string, ...ts: (Tensor | null | undefined)[]): Backend {
  let backend: Backend | null = null;
  for (const t of ts) {
    if (!t) continue;
    const b = t.backend;
    if (backend && b !== backend) fail(op, `tensors live on different backends (${backend.name} and ${b.name})`);
    backend = b;
  }
  if (!backend) fail(op, 'no tensor inputs');
  return backend;
}

/** Resolves a possibly negative axis against a rank. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(op, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcast of two shapes, or an error naming both. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(op, `shapes ${shapeString(a)} and ${shapeString(b)} cannot broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Left-pads a shape with 1s to the rank. */
export function padShape(shape: Shape, rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}
