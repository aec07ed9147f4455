// The pure-TypeScript reference backend: slow, simple, obviously-correct kernels over host memory.
// It is the oracle the native backend is tested against and the fallback when the addon cannot load.

import type {
  AdamWArgs,
  AttentionArgs,
  Backend,
  BinaryOp,
  GemmArgs,
  ReduceOp,
  Storage,
  UnaryOp,
} from '../backend.js';
import { HostBackend } from '../host_memory.js';
import { adamw, sumSquares } from './adamw.js';
import { attention, attentionBackward } from './attention.js';
import { cast, fill, stridedCopy } from './copy.js';
import { binary, dropout, unary, unaryBackward } from './elementwise.js';
import { embedding, embeddingBackward, rope } from './embedding_rope.js';
import { gemm } from './gemm.js';
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from './norm.js';
import { maxBackward, reduce } from './reduce.js';
import { crossEntropy, crossEntropyBackward, softmax, softmaxBackward } from './softmax_xent.js';

export { erf, erfc } from './math.js';

export class ReferenceBackend extends HostBackend implements Backend {
  readonly name = 'reference';

  // ---- data movement ----
  fill(out: Storage, value: number): void {
    fill(out, value);
  }
  cast(x: Storage, out: Storage): void {
    cast(x, out);
  }
  stridedCopy(
    src: Storage,
    srcOffset: number,
    srcStrides: readonly number[],
    shape: readonly number[],
    dst: Storage,
    dstOffset: number,
    dstStrides: readonly number[],
  ): void {
    stridedCopy(src, srcOffset, srcStrides, shape, dst, dstOffset, dstStrides);
  }

  // ---- elementwise ----
  unary(op: UnaryOp, x: Storage, out: Storage, param: number): void {
    unary(op, x, out, param);
  }
  unaryBackward(op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, param: number): void {
    unaryBackward(op, x, y, dy, dx, param);
  }
  binary(
    op: BinaryOp,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    out: Storage,
    outShape: readonly number[],
  ): void {
    binary(op, a, aShape, b, bShape, out, outShape);
  }
  reduce(op: ReduceOp, x: Storage, outer: number, r: number, inner: number, out: Storage, argmax?: Storage): void {
    reduce(op, x, outer, r, inner, out, argmax);
  }
  maxBackward(dy: Storage, argmax: Storage, dx: Storage, outer: number, r: number, inner: number): void {
    maxBackward(dy, argmax, dx, outer, r, inner);
  }

  // ---- matrix products ----
  gemm(a: Storage, b: Storage, c: Storage, args: GemmArgs, bias?: Storage): void {
    gemm(a, b, c, args, bias);
  }

  // ---- fused nn kernels ----
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    softmax(x, out, rows, cols, log);
  }
  softmaxBackward(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
    softmaxBackward(y, dy, dx, rows, cols, log);
  }
  layerNorm(
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
    layerNorm(x, w, b, out, mean, rstd, rows, cols, eps);
  }
  layerNormBackward(
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
    layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, rows, cols);
  }
  rmsNorm(x: Storage, w: Storage | null, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    rmsNorm(x, w, out, rstd, rows, cols, eps);
  }
  rmsNormBackward(
    dy: Storage,
    x: Storage,
    w: Storage | null,
    rstd: Storage,
    dx: Storage,
    dw: Storage | null,
    rows: number,
    cols: number,
  ): void {
    rmsNormBackward(dy, x, w, rstd, dx, dw, rows, cols);
  }
  embedding(ids: Storage, table: Storage, out: Storage, n: number, dim: number, vocab: number): void {
    embedding(ids, table, out, n, dim, vocab);
  }
  embeddingBackward(ids: Storage, dy: Storage, dTable: Storage, n: number, dim: number, vocab: number): void {
    embeddingBackward(ids, dy, dTable, n, dim, vocab);
  }
  crossEntropy(
    logits: Storage,
    targets: Storage,
    losses: Storage,
    lse: Storage,
    rows: number,
    cols: number,
    ignoreIndex: number,
    smoothing: number,
  ): void {
    crossEntropy(logits, targets, losses, lse, rows, cols, ignoreIndex, smoothing);
  }
  crossEntropyBackward(
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
    crossEntropyBackward(logits, targets, lse, dlogits, rows, cols, ignoreIndex, smoothing, gradScale);
  }
  rope(
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
    rope(x, out, invFreq, positions, batch, heads, t, headDim, rotaryDim, inverse, tokenMajor);
  }
  attention(
    q: Storage,
    k: Storage,
    v: Storage,
    keyMask: Storage | null,
    out: Storage,
    lse: Storage,
    args: AttentionArgs,
  ): void {
    attention(q, k, v, keyMask, out, lse, args);
  }
  attentionBackward(
    q: Storage,
    k: Storage,
    v: Storage,
    keyMask: Storage | null,
    out: Storage,
    lse: Storage,
    dOut: Storage,
    dq: Storage,
    dk: Storage,
    dv: Storage,
    args: AttentionArgs,
  ): void {
    attentionBackward(q, k, v, keyMask, out, lse, dOut, dq, dk, dv, args);
  }
  dropout(x: Storage, out: Storage, p: number, seed: number): void {
    dropout(x, out, p, seed);
  }

  // ---- optimiser ----
  adamw(
    params: readonly Storage[],
    grads: readonly Storage[],
    m: readonly Storage[],
    v: readonly Storage[],
    weightDecay: readonly number[],
    args: AdamWArgs,
  ): void {
    adamw(params, grads, m, v, weightDecay, args);
  }
  sumSquares(xs: readonly Storage[]): number {
    return sumSquares(xs);
  }
}
