// The native CPU backend: storages are host typed arrays (HostStorage, caching allocator) handed to the
// C++ addon without copies; every kernel runs there (OpenMP threads, AVX-512/AVX2 chosen at run time).
// This file only unwraps storages, checks dtypes and calls the addon, which re-checks every size.

import type {
  AdamWArgs,
  AttentionArgs,
  AttentionLayout,
  Backend,
  BinaryOp,
  GemmArgs,
  ReduceOp,
  Storage,
  UnaryOp,
} from '../backend.js';
import { HostBackend, host } from '../host_memory.js';
import { loadNativeAddon, type NativeAddon } from './native.js';

export { loadNativeAddon, type NativeAddon } from './native.js';

export type GemmImpl = 'auto' | 'blas' | 'own';
export type Isa = 'avx512' | 'avx2' | 'portable';


function f32(s: Storage, what: string): Float32Array {
  const h = host(s, what);
  if (h.dtype !== 'f32') throw new Error(`cpu: ${what} must be f32, got ${h.dtype}`);
  return h.data as Float32Array;
}

function i32(s: Storage, what: string): Int32Array {
  const h = host(s, what);
  if (h.dtype !== 'i32') throw new Error(`cpu: ${what} must be i32, got ${h.dtype}`);
  return h.data as Int32Array;
}

/** The addon's layout argument: 16 integers (offset, batch, head, token of q, k, v, out), or null. */
function layoutArray(l: AttentionLayout | undefined): number[] | null {
  if (!l) return null;
  return [l.q, l.k, l.v, l.out].flatMap((s) => [s.offset, s.batch, s.head, s.token]);
}

const optF32 = (s: Storage | null | undefined, what: string): Float32Array | null => (s ? f32(s, what) : null);

export class CpuBackend extends HostBackend implements Backend {
  readonly name = 'cpu';
  private readonly native: NativeAddon;

  constructor(native: NativeAddon = loadNativeAddon()) {
    super();
    this.native = native;
    // Transparent huge pages for large tensors (fewer TLB misses in GEMM packing and streaming
    // kernels), where the kernel leaves THP to madvise. LOOM_HUGEPAGES=0 turns the advice off.
    if (process.env.LOOM_HUGEPAGES === '1') this.allocator.onNewBuffer = (b) => native.adviseHugePages(b);
  }

  // ---- settings: process-wide (one addon per process), shared by every CpuBackend ----
  setNumThreads(n: number): void {
    this.native.setNumThreads(n);
  }
  numThreads(): number {
    return this.native.numThreads();
  }
  setGemm(impl: GemmImpl): void {
    this.native.setGemm(impl);
  }
  gemmImpl(): GemmImpl {
    return this.native.gemmImpl() as GemmImpl;
  }
  /** True when bf16 (mixed-precision) GEMMs run on AVX512_BF16 instructions; false: emulated in fp32. */
  bf16GemmNative(): boolean {
    return this.native.bf16GemmNative();
  }
  hasBlas(): boolean {
    return this.native.hasBlas();
  }
  blasInfo(): string {
    return this.native.blasInfo();
  }
  /** Forces an ISA level (throws if the CPU lacks it). */
  setIsa(isa: Isa): void {
    this.native.setIsa(isa);
  }
  isa(): Isa {
    return this.native.isa() as Isa;
  }
  bestIsa(): Isa {
    return this.native.bestIsa() as Isa;
  }


  // ---- data movement ----
  fill(out: Storage, value: number): void {
    this.native.fill(host(out, 'fill out').data, value);
  }
  cast(x: Storage, out: Storage): void {
    const hx = host(x, 'cast x'), ho = host(out, 'cast out');
    if (hx.numel !== ho.numel) throw new Error(`cast: ${hx.numel} elements into ${ho.numel}`);
    this.native.cast(hx.data, ho.data);
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
    const s = host(src, 'stridedCopy src'), d = host(dst, 'stridedCopy dst');
    if (s.dtype !== d.dtype) throw new Error(`stridedCopy: ${s.dtype} source into ${d.dtype} destination`);
    this.native.stridedCopy(s.data, srcOffset, srcStrides, shape, d.data, dstOffset, dstStrides);
  }

  // ---- elementwise ----
  unary(op: UnaryOp, x: Storage, out: Storage, param: number): void {
    this.native.unary(op, f32(x, 'unary x'), f32(out, 'unary out'), param);
  }
  unaryBackward(op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, param: number): void {
    this.native.unaryBackward(op, f32(x, 'x'), f32(y, 'y'), f32(dy, 'dy'), f32(dx, 'dx'), param);
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
    this.native.binary(op, f32(a, 'binary a'), aShape, f32(b, 'binary b'), bShape, f32(out, 'binary out'), outShape);
  }
  reduce(op: ReduceOp, x: Storage, outer: number, r: number, inner: number, out: Storage, argmax?: Storage): void {
    const am = argmax ? i32(argmax, 'reduce argmax') : null;
    this.native.reduce(op, f32(x, 'reduce x'), outer, r, inner, f32(out, 'reduce out'), am);
  }

  maxBackward(dy: Storage, argmax: Storage, dx: Storage, outer: number, r: number, inner: number): void {
    this.native.maxBackward(f32(dy, 'maxBackward dy'), i32(argmax, 'maxBackward argmax'), f32(dx, 'maxBackward dx'), outer, r, inner);
  }

  // ---- matrix products ----
  gemm(a: Storage, b: Storage, c: Storage, args: GemmArgs, bias?: Storage): void {
    this.native.gemm(
      f32(a, 'gemm a'),
      f32(b, 'gemm b'),
      f32(c, 'gemm c'),
      optF32(bias, 'gemm bias'),
      args.batch,
      args.m,
      args.n,
      args.k,
      args.transA,
      args.transB,
      args.strideA,
      args.strideB,
      args.strideC,
      args.alpha,
      args.beta,
      args.bf16 ?? false,
    );
  }

  // ---- fused nn kernels ----
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    this.native.softmax(f32(x, 'softmax x'), f32(out, 'softmax out'), rows, cols, log);
  }
  softmaxBackward(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
    this.native.softmaxBackward(f32(y, 'y'), f32(dy, 'dy'), f32(dx, 'dx'), rows, cols, log);
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
    this.native.layerNorm(
      f32(x, 'x'),
      optF32(w, 'w'),
      optF32(b, 'b'),
      f32(out, 'out'),
      f32(mean, 'mean'),
      f32(rstd, 'rstd'),
      rows,
      cols,
      eps,
    );
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
    this.native.layerNormBackward(
      f32(dy, 'dy'),
      f32(x, 'x'),
      optF32(w, 'w'),
      f32(mean, 'mean'),
      f32(rstd, 'rstd'),
      f32(dx, 'dx'),
      optF32(dw, 'dw'),
      optF32(db, 'db'),
      rows,
      cols,
    );
  }
  rmsNorm(x: Storage, w: Storage | null, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    this.native.rmsNorm(f32(x, 'x'), optF32(w, 'w'), f32(out, 'out'), f32(rstd, 'rstd'), rows, cols, eps);
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
    this.native.rmsNormBackward(
      f32(dy, 'dy'),
      f32(x, 'x'),
      optF32(w, 'w'),
      f32(rstd, 'rstd'),
      f32(dx, 'dx'),
      optF32(dw, 'dw'),
      rows,
      cols,
    );
  }
  embedding(ids: Storage, table: Storage, out: Storage, n: number, dim: number, vocab: number): void {
    this.native.embedding(i32(ids, 'ids'), f32(table, 'table'), f32(out, 'out'), n, dim, vocab);
  }
  embeddingBackward(ids: Storage, dy: Storage, dTable: Storage, n: number, dim: number, vocab: number): void {
    this.native.embeddingBackward(i32(ids, 'ids'), f32(dy, 'dy'), f32(dTable, 'dTable'), n, dim, vocab);
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
    this.native.crossEntropy(
      f32(logits, 'logits'),
      i32(targets, 'targets'),
      f32(losses, 'losses'),
      f32(lse, 'lse'),
      rows,
      cols,
      ignoreIndex,
      smoothing,
    );
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
    this.native.crossEntropyBackward(
      f32(logits, 'logits'),
      i32(targets, 'targets'),
      f32(lse, 'lse'),
      f32(dlogits, 'dlogits'),
      rows,
      cols,
      ignoreIndex,
      smoothing,
      gradScale,
    );
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
    this.native.rope(
      f32(x, 'x'),
      f32(out, 'out'),
      f32(invFreq, 'invFreq'),
      i32(positions, 'positions'),
      batch,
      heads,
      t,
      headDim,
      rotaryDim,
      inverse,
      tokenMajor,
    );
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
    const a = args;
    this.native.attention(
      f32(q, 'q'),
      f32(k, 'k'),
      f32(v, 'v'),
      keyMask ? i32(keyMask, 'keyMask') : null,
      f32(out, 'out'),
      f32(lse, 'lse'),
      a.batch,
      a.headsQ,
      a.headsKV,
      a.tq,
      a.tk,
      a.headDim,
      a.scale,
      a.causal,
      a.dropoutP,
      a.seed,
      layoutArray(a.layout),
    );
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
    const a = args;
    this.native.attentionBackward(
      f32(q, 'q'),
      f32(k, 'k'),
      f32(v, 'v'),
      keyMask ? i32(keyMask, 'keyMask') : null,
      f32(out, 'out'),
      f32(lse, 'lse'),
      f32(dOut, 'dOut'),
      f32(dq, 'dq'),
      f32(dk, 'dk'),
      f32(dv, 'dv'),
      a.batch,
      a.headsQ,
      a.headsKV,
      a.tq,
      a.tk,
      a.headDim,
      a.scale,
      a.causal,
      a.dropoutP,
      a.seed,
      layoutArray(a.layout),
    );
  }
  dropout(x: Storage, out: Storage, p: number, seed: number): void {
    this.native.dropout(f32(x, 'dropout x'), f32(out, 'dropout out'), p, seed);
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
    this.native.adamw(
      params.map((s, i) => f32(s, `params[${i}]`)),
      grads.map((s, i) => f32(s, `grads[${i}]`)),
      m.map((s, i) => f32(s, `m[${i}]`)),
      v.map((s, i) => f32(s, `v[${i}]`)),
      weightDecay,
      args.lr,
      args.beta1,
      args.beta2,
      args.eps,
      args.step,
      args.gradScale ?? 1,
    );
  }
  sumSquares(xs: readonly Storage[]): number {
    return this.native.sumSquares(xs.map((s, i) => f32(s, `xs[${i}]`)));
  }
}

/** A CpuBackend, or the Error explaining why the native addon is unavailable (for fallback logic). */
export function tryCreateCpuBackend(): CpuBackend | Error {
  try {
    return new CpuBackend();
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
