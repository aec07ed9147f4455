// Reference softmax / log-softmax (forward and backward) and softmax cross-entropy with ignoreIndex
// and label smoothing. Max-subtracted exponentials and double row sums keep large logits (1e4) exact.

import type { Storage } from '../backend.js';
import { dim, f32, i32 } from './common.js';

/** max over x[o .. o+cols) and log(sum exp(x - max)), in double. */
function rowMaxLogSum(xs: Float32Array, o: number, cols: number): [number, number] {
  let mx = -Infinity;
  for (let j = 0; j < cols; j++) {
    const v = xs[o + j]!;
    if (v > mx || v !== v) mx = v;
  }
  let sum = 0;
  for (let j = 0; j < cols; j++) sum += Math.exp(xs[o + j]! - mx);
  return [mx, Math.log(sum)];
}

export function softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
  dim(rows, 'softmax rows');
  dim(cols, 'softmax cols');
  const xs = f32(x, rows * cols, 'softmax x');
  const os = f32(out, rows * cols, 'softmax out');
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const [mx, logSum] = rowMaxLogSum(xs, o, cols);
    if (log) {
      for (let j = 0; j < cols; j++) os[o + j] = xs[o + j]! - mx - logSum;
    } else {
      const inv = Math.exp(-logSum);
      for (let j = 0; j < cols; j++) os[o + j] = Math.exp(xs[o + j]! - mx) * inv;
    }
  }
}

export function softmaxBackward(
  y: Storage,
  dy: Storage,
  dx: Storage,
  rows: number,
  cols: number,
  log: boolean,
): void {
  dim(rows, 'softmaxBackward rows');
  dim(cols, 'softmaxBackward cols');
  const n = rows * cols;
  const ys = f32(y, n, 'softmaxBackward y');
  const dys = f32(dy, n, 'softmaxBackward dy');
  const dxs = f32(dx, n, 'softmaxBackward dx');
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (log) {
      // y = log softmax: dx = dy - softmax * sum(dy).
      let s = 0;
      for (let j = 0; j < cols; j++) s += dys[o + j]!;
      for (let j = 0; j < cols; j++) dxs[o + j] = dys[o + j]! - Math.exp(ys[o + j]!) * s;
    } else {
      // y = softmax: dx = y * (dy - sum(dy * y)).
      let s = 0;
      for (let j = 0; j < cols; j++) s += dys[o + j]! * ys[o + j]!;
      for (let j = 0; j < cols; j++) dxs[o + j] = ys[o + j]! * (dys[o + j]! - s);
    }
  }
}

function checkTargets(ts: Int32Array, rows: number, cols: number, ignoreIndex: number, what: string): void {
  for (let r = 0; r < rows; r++) {
    const t = ts[r]!;
    if (t !== ignoreIndex && (t < 0 || t >= cols)) {
      throw new Error(`${what}: target ${t} at row ${r} is outside [0, ${cols}) and is not ignoreIndex ${ignoreIndex}`);
    }
  }
}

export function crossEntropy(
  logits: Storage,
  targets: Storage,
  losses: Storage,
  lse: Storage,
  rows: number,
  cols: number,
  ignoreIndex: number,
  smoothing: number,
): void {
  dim(rows, 'crossEntropy rows');
  dim(cols, 'crossEntropy cols');
  const xs = f32(logits, rows * cols, 'crossEntropy logits');
  const ts = i32(targets, rows, 'crossEntropy targets');
  const ls = f32(losses, rows, 'crossEntropy losses');
  const lses = f32(lse, rows, 'crossEntropy lse');
  checkTargets(ts, rows, cols, ignoreIndex, 'crossEntropy');
  const s = smoothing;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const [mx, logSum] = rowMaxLogSum(xs, o, cols);
    const l = mx + logSum;
    lses[r] = l;
    const t = ts[r]!;
    if (t === ignoreIndex) {
      ls[r] = 0;
      continue;
    }
    let loss = (1 - s) * (l - xs[o + t]!);
    if (s !== 0) {
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += xs[o + j]!;
      loss += s * (l - sum / cols);
    }
    ls[r] = loss;
  }
}

export function crossEntropyBackward(
  logits: Storage,
  targets: Storage,
  lse: Storage,
  dlogits: Storage,
  rows: number,
  cols: number,
  ignoreIndex: number,
  smoothing: number,
  gradScale: number,
): void {
  dim(rows, 'crossEntropyBackward rows');
  dim(cols, 'crossEntropyBackward cols');
  const xs = f32(logits, rows * cols, 'crossEntropyBackward logits');
  const ts = i32(targets, rows, 'crossEntropyBackward targets');
  const lses = f32(lse, rows, 'crossEntropyBackward lse');
  const ds = f32(dlogits, rows * cols, 'crossEntropyBackward dlogits');
  checkTargets(ts, rows, cols, ignoreIndex, 'crossEntropyBackward');
  const off = smoothing / cols;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const t = ts[r]!;
    if (t === ignoreIndex) {
      ds.fill(0, o, o + cols);
      continue;
    }
    const l = lses[r]!;
    for (let j = 0; j < cols; j++) {
      const p = Math.exp(xs[o + j]! - l);
      ds[o + j] = gradScale * (p - (j === t ? 1 - smoothing : 0) - off);
    }
  }
}
