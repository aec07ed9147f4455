// Reference reductions over the middle axis of an [outer, r, inner] view: sum (double accumulator)
// and max with argmax (first index reaching the maximum; NaN wins, as in PyTorch).

import type { ReduceOp, Storage } from '../backend.js';
import { dim, f32, i32 } from './common.js';

export function reduce(
  op: ReduceOp,
  x: Storage,
  outer: number,
  r: number,
  inner: number,
  out: Storage,
  argmax?: Storage,
): void {
  const what = `reduce ${op}`;
  dim(outer, `${what} outer`);
  dim(r, `${what} r`);
  dim(inner, `${what} inner`);
  const xs = f32(x, outer * r * inner, `${what} x`);
  const os = f32(out, outer * inner, `${what} out`);
  if (op === 'sum') {
    if (argmax) throw new Error('reduce sum: argmax is only produced by max');
    const acc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      acc.fill(0);
      for (let j = 0; j < r; j++) {
        const base = (o * r + j) * inner;
        for (let i = 0; i < inner; i++) acc[i] += xs[base + i]!;
      }
      for (let i = 0; i < inner; i++) os[o * inner + i] = acc[i]!;
    }
  } else if (op === 'max') {
    if (r === 0 && outer * inner > 0) throw new Error('reduce max: cannot reduce an empty axis');
    const am = argmax ? i32(argmax, outer * inner, `${what} argmax`) : null;
    const best = new Float64Array(inner);
    const bestJ = new Int32Array(inner);
    for (let o = 0; o < outer; o++) {
      const base0 = o * r * inner;
      for (let i = 0; i < inner; i++) best[i] = xs[base0 + i]!;
      bestJ.fill(0);
      for (let j = 1; j < r; j++) {
        const base = base0 + j * inner;
        for (let i = 0; i < inner; i++) {
          const v = xs[base + i]!;
          const b = best[i]!;
          if (v > b || (v !== v && b === b)) {
            best[i] = v;
            bestJ[i] = j;
          }
        }
      }
      for (let i = 0; i < inner; i++) {
        os[o * inner + i] = best[i]!;
        if (am) am[o * inner + i] = bestJ[i]!;
      }
    }
  } else {
    throw new Error(`reduce: unknown op ${String(op)}`);
  }
}

/** Backward of max: dx[o, j, i] = dy[o, i] where j == argmax[o, i], else 0 (dx overwritten). */
export function maxBackward(dy: Storage, argmax: Storage, dx: Storage, outer: number, r: number, inner: number): void {
  dim(outer, 'maxBackward outer');
  dim(r, 'maxBackward r');
  dim(inner, 'maxBackward inner');
  const dys = f32(dy, outer * inner, 'maxBackward dy');
  const am = i32(argmax, outer * inner, 'maxBackward argmax');
  const dxs = f32(dx, outer * r * inner, 'maxBackward dx');
  for (let q = 0; q < outer * inner; q++) {
    const j = am[q]!;
    if (j < 0 || j >= r) throw new Error(`maxBackward: argmax ${j} at ${q} is outside [0, ${r})`);
  }
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < r; j++) {
      const base = (o * r + j) * inner;
      for (let i = 0; i < inner; i++) dxs[base + i] = am[o * inner + i] === j ? dys[o * inner + i]! : 0;
    }
  }
}
