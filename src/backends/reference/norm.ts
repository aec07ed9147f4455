// Reference LayerNorm and RMSNorm over the last axis of a [rows, cols] view, forward and backward.
// Row statistics and the dw/db sums over rows are accumulated in double.

import type { Storage } from '../backend.js';
import { dim, f32 } from './common.js';

export function layerNorm(
  x: Storage,
  w: Storage | null,
  b: Storage | null,
  out: Storage,
  mean: Storage,
  rstd: Storage,
  rows: number,
  cols: number,
  eps: number,
): void {
  dim(rows, 'layerNorm rows');
  dim(cols, 'layerNorm cols');
  const n = rows * cols;
  const xs = f32(x, n, 'layerNorm x');
  const ws = w ? f32(w, cols, 'layerNorm w') : null;
  const bs = b ? f32(b, cols, 'layerNorm b') : null;
  const os = f32(out, n, 'layerNorm out');
  const ms = f32(mean, rows, 'layerNorm mean');
  const rs = f32(rstd, rows, 'layerNorm rstd');
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += xs[o + j]!;
    const mu = cols > 0 ? sum / cols : 0;
    let sq = 0;
    for (let j = 0; j < cols; j++) {
      const d = xs[o + j]! - mu;
      sq += d * d;
    }
    const inv = 1 / Math.sqrt((cols > 0 ? sq / cols : 0) + eps);
    ms[r] = mu;
    rs[r] = inv;
    for (let j = 0; j < cols; j++) {
      let v = (xs[o + j]! - mu) * inv;
      if (ws) v *= ws[j]!;
      if (bs) v += bs[j]!;
      os[o + j] = v;
    }
  }
}

export function layerNormBackward(
  dy: Storage,
  x: Storage,
  w: Storage | null,
  mean: Storage,
  rstd: Storage,
  dx: Storage,
  dw: Storage | null,
  db: Storage | null,
  rows: number,
  cols: number,
): void {
  dim(rows, 'layerNormBackward rows');
  dim(cols, 'layerNormBackward cols');
  const n = rows * cols;
  const dys = f32(dy, n, 'layerNormBackward dy');
  const xs = f32(x, n, 'layerNormBackward x');
  const ws = w ? f32(w, cols, 'layerNormBackward w') : null;
  const ms = f32(mean, rows, 'layerNormBackward mean');
  const rs = f32(rstd, rows, 'layerNormBackward rstd');
  const dxs = f32(dx, n, 'layerNormBackward dx');
  const dws = dw ? f32(dw, cols, 'layerNormBackward dw') : null;
  const dbs = db ? f32(db, cols, 'layerNormBackward db') : null;
  const accW = new Float64Array(cols);
  const accB = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = ms[r]!;
    const inv = rs[r]!;
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, xhat = (x - mean) * rstd.
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (xs[o + j]! - mu) * inv;
      const d = dys[o + j]!;
      const g = ws ? d * ws[j]! : d;
      sumG += g;
      sumGX += g * xhat;
      accW[j] += d * xhat;
      accB[j] += d;
    }
    const meanG = sumG / cols;
    const meanGX = sumGX / cols;
    for (let j = 0; j < cols; j++) {
      const xhat = (xs[o + j]! - mu) * inv;
      const g = ws ? dys[o + j]! * ws[j]! : dys[o + j]!;
      dxs[o + j] = inv * (g - meanG - xhat * meanGX);
    }
  }
  if (dws) for (let j = 0; j < cols; j++) dws[j] = accW[j]!;
  if (dbs) for (let j = 0; j < cols; j++) dbs[j] = accB[j]!;
}

export function rmsNorm(
  x: Storage,
  w: Storage | null,
  out: Storage,
  rstd: Storage,
  rows: number,
  cols: number,
  eps: number,
): void {
  dim(rows, 'rmsNorm rows');
  dim(cols, 'rmsNorm cols');
  const n = rows * cols;
  const xs = f32(x, n, 'rmsNorm x');
  const ws = w ? f32(w, cols, 'rmsNorm w') : null;
  const os = f32(out, n, 'rmsNorm out');
  const rs = f32(rstd, rows, 'rmsNorm rstd');
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sq = 0;
    for (let j = 0; j < cols; j++) sq += xs[o + j]! * xs[o + j]!;
    const inv = 1 / Math.sqrt((cols > 0 ? sq / cols : 0) + eps);
    rs[r] = inv;
    for (let j = 0; j < cols; j++) os[o + j] = ws ? xs[o + j]! * inv * ws[j]! : xs[o + j]! * inv;
  }
}

export function rmsNormBackward(
  dy: Storage,
  x: Storage,
  w: Storage | null,
  rstd: Storage,
  dx: Storage,
  dw: Storage | null,
  rows: number,
  cols: number,
): void {
  dim(rows, 'rmsNormBackward rows');
  dim(cols, 'rmsNormBackward cols');
  const n = rows * cols;
  const dys = f32(dy, n, 'rmsNormBackward dy');
  const xs = f32(x, n, 'rmsNormBackward x');
  const ws = w ? f32(w, cols, 'rmsNormBackward w') : null;
  const rs = f32(rstd, rows, 'rmsNormBackward rstd');
  const dxs = f32(dx, n, 'rmsNormBackward dx');
  const dws = dw ? f32(dw, cols, 'rmsNormBackward dw') : null;
  const accW = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const inv = rs[r]!;
    // dx = rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd.
    let sumGX = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = xs[o + j]! * inv;
      const d = dys[o + j]!;
      const g = ws ? d * ws[j]! : d;
      sumGX += g * xhat;
      accW[j] += d * xhat;
    }
    const meanGX = sumGX / cols;
    for (let j = 0; j < cols; j++) {
      const xhat = xs[o + j]! * inv;
      const g = ws ? dys[o + j]! * ws[j]! : dys[o + j]!;
      dxs[o + j] = inv * (g - xhat * meanGX);
    }
  }
  if (dws) for (let j = 0; j < cols; j++) dws[j] = accW[j]!;
}
