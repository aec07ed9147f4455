// Fused neural-network ops: softmax, norms, embedding, cross-entropy and dropout, each one native
// kernel forward and one backward. Rotary embedding and attention are in attention.ts.

import { record } from '../autograd.js';
import { defaultGenerator } from '../random.js';
import { Tensor, empty, shapeString } from '../tensor.js';
import { checkDType, commonBackend, fail, normAxis } from './check.js';
import { permute } from './shape.js';

function lastAxisRows(x: Tensor): [number, number] {
  const cols = x.shape[x.rank - 1] ?? 1;
  return [cols === 0 ? 0 : x.size / cols, cols];
}

function softmaxImpl(x: Tensor, axis: number, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  checkDType(op, 'x', x, 'f32');
  if (x.rank === 0) fail(op, 'needs at least one axis');
  const a = normAxis(op, axis, x.rank);
  if (a !== x.rank - 1) {
    // Other axes: move the axis last, reuse the kernel, move it back (autograd flows through permute).
    const perm = [...Array(x.rank).keys()];
    perm[a] = x.rank - 1;
    perm[x.rank - 1] = a;
    const moved = permute(x, perm);
    const y = softmaxImpl(moved, -1, log);
    const back = permute(y, perm);
    moved.dispose();
    y.dispose();
    return back;
  }
  const [rows, cols] = lastAxisRows(x);
  const out = empty(x.shape, 'f32', x.backend);
  x.backend.softmax(x.storage, out.storage, rows, cols, log);
  return record(out, op, [x], [out], (dy, [y]) => {
    const dx = empty(dy.shape, 'f32', dy.backend);
    dy.backend.softmaxBackward(y!.storage, dy.storage, dx.storage, rows, cols, log);
    return [dx];
  });
}

export const softmax = (x: Tensor, axis = -1): Tensor => softmaxImpl(x, axis, false);
export const logSoftmax = (x: Tensor, axis = -1): Tensor => softmaxImpl(x, axis, true);

function checkNormParam(op: string, name: string, p: Tensor | null | undefined, cols: number): void {
  if (!p) return;
  checkDType(op, name, p, 'f32');
  if (p.rank !== 1 || p.shape[0] !== cols) fail(op, `${name} ${shapeString(p.shape)} does not match last axis ${cols}`);
}

/** Layer normalisation over the last axis: (x - mean) / sqrt(var + eps) * weight + bias. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  checkDType('layerNorm', 'x', x, 'f32');
  const backend = commonBackend('layerNorm', x, weight, bias);
  const [rows, cols] = lastAxisRows(x);
  checkNormParam('layerNorm', 'weight', weight, cols);
  checkNormParam('layerNorm', 'bias', bias, cols);
  const out = empty(x.shape, 'f32', backend);
  const meanT = empty([rows], 'f32', backend);
  const rstdT = empty([rows], 'f32', backend);
  backend.layerNorm(x.storage, weight?.storage ?? null, bias?.storage ?? null, out.storage, meanT.storage, rstdT.storage, rows, cols, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const saved = [x, meanT, rstdT, ...(weight ? [weight] : [])];
  const result = record(out, 'layerNorm', inputs, saved, (dy, [sx, m, r, sw]) => {
    const dx = empty(dy.shape, 'f32', backend);
    const dw = weight ? empty([cols], 'f32', backend) : null;
    const db = bias ? empty([cols], 'f32', backend) : null;
    backend.layerNormBackward(dy.storage, sx!.storage, sw?.storage ?? null, m!.storage, r!.storage, dx.storage, dw?.storage ?? null, db?.storage ?? null, rows, cols);
    return [dx, ...(dw ? [dw] : []), ...(db ? [db] : [])];
  });
  meanT.dispose();
  rstdT.dispose();
  return result;
}

/** RMS normalisation over the last axis (Llama): x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  checkDType('rmsNorm', 'x', x, 'f32');
  const backend = commonBackend('rmsNorm', x, weight);
  const [rows, cols] = lastAxisRows(x);
  checkNormParam('rmsNorm', 'weight', weight, cols);
  const out = empty(x.shape, 'f32', backend);
  const rstdT = empty([rows], 'f32', backend);
  backend.rmsNorm(x.storage, weight?.storage ?? null, out.storage, rstdT.storage, rows, cols, eps);
  const inputs = weight ? [x, weight] : [x];
  const result = record(out, 'rmsNorm', inputs, weight ? [x, rstdT, weight] : [x, rstdT], (dy, [sx, r, sw]) => {
    const dx = empty(dy.shape, 'f32', backend);
    const dw = weight ? empty([cols], 'f32', backend) : null;
    backend.rmsNormBackward(dy.storage, sx!.storage, sw?.storage ?? null, r!.storage, dx.storage, dw?.storage ?? null, rows, cols);
    return dw ? [dx, dw] : [dx];
  });
  rstdT.dispose();
  return result;
}

/** Rows of `table` [vocab, dim] picked by integer `ids` (any shape); out is [...ids.shape, dim]. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  checkDType('embedding', 'ids', ids, 'i32');
  checkDType('embedding', 'table', table, 'f32');
  const backend = commonBackend('embedding', ids, table);
  if (table.rank !== 2) fail('embedding', `table must be [vocab, dim], got ${shapeString(table.shape)}`);
  const [vocab, dim] = table.shape as [number, number];
  const out = empty([...ids.shape, dim], 'f32', backend);
  backend.embedding(ids.storage, table.storage, out.storage, ids.size, dim, vocab);
  return record(out, 'embedding', [ids, table], [ids], (dy, [sid]) => {
    const dt = empty([vocab, dim], 'f32', backend);
    backend.embeddingBackward(sid!.storage, dy.storage, dt.storage, sid!.size, dim, vocab);
    return [null, dt];
  });
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (PyTorch's -100). */
  ignoreIndex?: number;
  labelSmoothing?: number;
  /** 'mean' over the targets not ignored (PyTorch), or 'sum'. */
  reduction?: 'mean' | 'sum';
}

/** Softmax cross-entropy of logits [..., V] against integer targets [...], fused. Returns a scalar. */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const smoothing = options.labelSmoothing ?? 0;
  const reduction = options.reduction ?? 'mean';
  checkDType('crossEntropy', 'logits', logits, 'f32');
  checkDType('crossEntropy', 'targets', targets, 'i32');
  const backend = commonBackend('crossEntropy', logits, targets);
  if (logits.rank < 1) fail('crossEntropy', 'logits need a class axis');
  const [rows, cols] = lastAxisRows(logits);
  if (targets.size !== rows || targets.rank !== logits.rank - 1 || targets.shape.some((d, i) => d !== logits.shape[i])) {
    fail('crossEntropy', `targets ${shapeString(targets.shape)} do not match logits ${shapeString(logits.shape)} without its class axis`);
  }
  if (!(smoothing >= 0 && smoothing <= 1)) fail('crossEntropy', `labelSmoothing ${smoothing} is outside [0, 1]`);
  const losses = empty([rows], 'f32', backend);
  const lse = empty([rows], 'f32', backend);
  backend.crossEntropy(logits.storage, targets.storage, losses.storage, lse.storage, rows, cols, ignoreIndex, smoothing);
  let count = rows;
  if (reduction === 'mean') {
    const t = backend.readSync(targets.storage) as Int32Array;
    count = 0;
    for (let i = 0; i < t.length; i++) if (t[i] !== ignoreIndex) count++;
  }
  const total = empty([], 'f32', backend);
  backend.reduce('sum', losses.storage, 1, rows, 1, total.storage);
  losses.dispose();
  // Mean over zero targets is NaN in PyTorch; keep that so a fully-masked batch is visible.
  const factor = reduction === 'mean' ? 1 / count : 1;
  if (factor !== 1) backend.unary('scale', total.storage, total.storage, factor);
  const result = record(total, 'crossEntropy', [logits, targets], [logits, targets, lse], (dy, [sl, st, sLse]) => {
    const g = backend.readSync(dy.storage)[0]! * factor;
    const dl = empty(sl!.shape, 'f32', backend);
    backend.crossEntropyBackward(sl!.storage, st!.storage, sLse!.storage, dl.storage, rows, cols, ignoreIndex, smoothing, g);
    return [dl, null];
  });
  lse.dispose();
  return result;
}

export interface DropoutOptions {
  /** Mask seed; drawn from the default generator when absent. */
  seed?: number;
  /** Off (identity) when false, as in eval mode. */
  training?: boolean;
}

/** Zeroes each element with probability p and scales the rest by 1/(1-p). */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  checkDType('dropout', 'x', x, 'f32');
  if (!(p >= 0 && p < 1)) fail('dropout', `p = ${p} must be in [0, 1)`);
  if (options.training === false || p === 0) {
    const out = new Tensor(x.buf().retain(), x.shape, x.dtype);
    return record(out, 'dropout', [x], [], (dy) => [new Tensor(dy.buf().retain(), dy.shape, dy.dtype)]);
  }
  const seed = options.seed ?? defaultGenerator.seed();
  const out = empty(x.shape, 'f32', x.backend);
  x.backend.dropout(x.storage, out.storage, p, seed);
  return record(out, 'dropout', [x], [], (dy) => {
    const dx = empty(dy.shape, 'f32', dy.backend);
    dy.backend.dropout(dy.storage, dx.storage, p, seed);
    return [dx];
  });
}
