// Reference token embedding (gather, and its scatter-add backward grouped per id in double) and
// rotary position embedding in the rotate_half convention, with partial rotary dims and inverse.

import type { Storage } from '../backend.js';
import { dim, f32, host, i32 } from './common.js';

function checkIds(ids: Int32Array, n: number, vocab: number, what: string): void {
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= vocab) throw new Error(`${what}: id ${id} at row ${i} is outside [0, ${vocab})`);
  }
}

export function embedding(ids: Storage, table: Storage, out: Storage, n: number, d: number, vocab: number): void {
  dim(n, 'embedding n');
  dim(d, 'embedding dim');
  dim(vocab, 'embedding vocab');
  const is = i32(ids, n, 'embedding ids');
  const ts = f32(table, vocab * d, 'embedding table');
  const os = f32(out, n * d, 'embedding out');
  checkIds(is, n, vocab, 'embedding');
  for (let i = 0; i < n; i++) {
    const src = is[i]! * d;
    os.set(ts.subarray(src, src + d), i * d);
  }
}

export function embeddingBackward(
  ids: Storage,
  dy: Storage,
  dTable: Storage,
  n: number,
  d: number,
  vocab: number,
): void {
  dim(n, 'embeddingBackward n');
  dim(d, 'embeddingBackward dim');
  dim(vocab, 'embeddingBackward vocab');
  const is = i32(ids, n, 'embeddingBackward ids');
  const dys = f32(dy, n * d, 'embeddingBackward dy');
  const dts = f32(dTable, vocab * d, 'embeddingBackward dTable');
  if (host(dy, 'embeddingBackward dy') === host(dTable, 'embeddingBackward dTable')) {
    throw new Error('embeddingBackward: dTable may not alias dy');
  }
  checkIds(is, n, vocab, 'embeddingBackward');
  // Counting sort of the rows by id (stable), then one double-precision sum per used id.
  const start = new Int32Array(vocab + 1);
  for (let i = 0; i < n; i++) start[is[i]! + 1]!++;
  for (let v = 0; v < vocab; v++) start[v + 1]! += start[v]!;
  const order = new Int32Array(n);
  const next = start.slice(0, vocab);
  for (let i = 0; i < n; i++) order[next[is[i]!]!++] = i;
  dts.fill(0, 0, vocab * d);
  const acc = new Float64Array(d);
  for (let v = 0; v < vocab; v++) {
    const lo = start[v]!;
    const hi = start[v + 1]!;
    if (lo === hi) continue;
    acc.fill(0);
    for (let q = lo; q < hi; q++) {
      const row = order[q]! * d;
      for (let j = 0; j < d; j++) acc[j] += dys[row + j]!;
    }
    for (let j = 0; j < d; j++) dts[v * d + j] = acc[j]!;
  }
}

export function rope(
  x: Storage,
  out: Storage,
  invFreq: Storage,
  positions: Storage,
  batch: number,
  heads: number,
  t: number,
  headDim: number,
  rotaryDim: number,
  inverse: boolean,
  tokenMajor = false,
): void {
  dim(batch, 'rope batch');
  dim(heads, 'rope heads');
  dim(t, 'rope t');
  dim(headDim, 'rope headDim');
  dim(rotaryDim, 'rope rotaryDim');
  if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
    throw new Error(`rope: rotaryDim ${rotaryDim} must be even and <= headDim ${headDim}`);
  }
  const half = rotaryDim / 2;
  const n = batch * heads * t * headDim;
  const xs = f32(x, n, 'rope x');
  const os = f32(out, n, 'rope out');
  const fs = f32(invFreq, half, 'rope invFreq');
  const ps = i32(positions, batch * t, 'rope positions');
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < batch; b++) {
    for (let tt = 0; tt < t; tt++) {
      const pos = ps[b * t + tt]!;
      for (let i = 0; i < half; i++) {
        // The angle is a float32 product, as in HF (fp32 position * inv_freq) and the native kernel.
        const angle = Math.fround(pos * fs[i]!);
        cos[i] = Math.cos(angle);
        sin[i] = sign * Math.sin(angle);
      }
      for (let h = 0; h < heads; h++) {
        const o = (tokenMajor ? (b * t + tt) * heads + h : (b * heads + h) * t + tt) * headDim;
        for (let i = 0; i < half; i++) {
          const x1 = xs[o + i]!;
          const x2 = xs[o + i + half]!;
          os[o + i] = x1 * cos[i]! - x2 * sin[i]!;
          os[o + i + half] = x2 * cos[i]! + x1 * sin[i]!;
        }
        if (os !== xs) for (let j = rotaryDim; j < headDim; j++) os[o + j] = xs[o + j]!;
      }
    }
  }
}
