// The Backend interface: what a device (native CPU, the TypeScript reference, later CUDA/WebGPU) implements.
// Nothing above engine/ sees a backend; the engine validates shapes and dtypes, then calls these kernels.
//
// Contract shared by every kernel:
// - Storages are flat, contiguous, row-major buffers owned by the backend. Outputs are preallocated by
//   the engine; a kernel writes every element of its outputs (unless a comment says "accumulates").
// - Elementwise kernels (unary, binary, unaryBackward, fill, dropout) allow `out` to alias an input.
// - Kernels may run asynchronously on devices that can; `readSync`/`read` are the only host round trips.
// - Inputs were validated by the engine; a backend still never reads or writes outside its storages
//   (the native addon re-checks sizes and throws a JS error rather than crash).

export type DType = 'f32' | 'i32' | 'bf16';

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, i32: 4, bf16: 2 };

/** Host arrays matching each dtype (bf16 is carried as raw 16-bit patterns). */
export interface HostArrays {
  f32: Float32Array;
  i32: Int32Array;
  bf16: Uint16Array;
}
export type HostArray = HostArrays[DType];

/** A backend buffer. Opaque above the backend except for dtype and length. */
export interface Storage {
  readonly dtype: DType;
  readonly numel: number;
}

export interface MemoryInfo {
  /** Bytes held by storages that are allocated and not yet freed. */
  liveBytes: number;
  /** Number of live storages. */
  liveCount: number;
  /** Bytes kept by the caching allocator for reuse (freed by emptyCache). */
  cachedBytes: number;
  /** Highest liveBytes since the backend was created or resetPeakMemory() (torch's max_memory_allocated). */
  peakLiveBytes: number;
}

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'tanh'
  | 'sigmoid'
  | 'relu'
  | 'silu'
  | 'gelu' // exact form: x * Phi(x), with erf
  | 'gelu_tanh' // tanh approximation (GPT-2's "gelu_new")
  | 'pow' // x ** param
  | 'scale' // x * param
  | 'add_scalar'; // x + param

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
export type ReduceOp = 'sum' | 'max';

export interface GemmArgs {
  /** Number of matrices in the batch (>= 1). */
  batch: number;
  m: number;
  n: number;
  k: number;
  /** A is stored K x M (and used transposed) when true, else M x K. */
  transA: boolean;
  /** B is stored N x K (and used transposed) when true, else K x N. */
  transB: boolean;
  /** Element offsets between consecutive matrices of the batch; 0 broadcasts one matrix to all. */
  strideA: number;
  strideB: number;
  strideC: number;
  /** C = alpha * op(A) op(B) + beta * C (+ bias). beta = 0 ignores the old C entirely (NaN included). */
  alpha: number;
  beta: number;
  /**
   * Mixed precision: A and B rounded to bf16 (nearest even) and the products summed in fp32, as a
   * bf16 autocast matmul. C, alpha, beta and bias stay fp32. Default false (plain fp32).
   */
  bf16?: boolean;
}

/**
 * Where the rows of one attention operand, seen as [B, H, T, D], lie in its storage: row (b, h, t)
 * starts at element offset + b*batch + h*head + t*token and its D values are contiguous. Lets q, k, v
 * be views of one packed QKV projection or of a KV cache with spare capacity, without copies.
 */
export interface AttentionStrides {
  offset: number;
  batch: number;
  head: number;
  token: number;
}

/**
 * Layouts of q, k, v and out (dOut uses out's; dq, dk, dv use q's, k's, v's). Written regions must not
 * overlap; dq, dk, dv may be three disjoint regions of one storage (the gradient of a packed QKV).
 */
export interface AttentionLayout {
  q: AttentionStrides;
  k: AttentionStrides;
  v: AttentionStrides;
  out: AttentionStrides;
}

/** Strides of a contiguous [B, H, T, D] tensor. */
export function contiguousStrides(heads: number, t: number, d: number): AttentionStrides {
  return { offset: 0, batch: heads * t * d, head: t * d, token: d };
}

export interface AttentionArgs {
  batch: number;
  headsQ: number;
  /** Key/value heads; headsQ is a multiple (grouped-query attention: query head h uses kv head h / (headsQ/headsKV)). */
  headsKV: number;
  /** Query length T and key length S. */
  tq: number;
  tk: number;
  headDim: number;
  scale: number;
  /** Causal, aligned bottom-right: query t sees key s iff s <= t + (tk - tq) (a KV cache of tk - tq past tokens). */
  causal: boolean;
  /** Dropout probability on the attention probabilities (0 = none). Mask regenerated from seed in backward. */
  dropoutP: number;
  seed: number;
  /** Strided operands; absent = every operand contiguous [B, H, T, D] (lse is always contiguous [B, Hq, T]). */
  layout?: AttentionLayout;
}

export interface AdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1-based step number after this update (bias correction uses it). */
  step: number;
  /**
   * Every gradient is multiplied by this first, as if scaled in place beforehand (the gradient-clipping
   * coefficient, folded into the update so that clipping costs no pass of its own); default 1.
   */
  gradScale?: number;
}

export interface Backend {
  readonly name: string;

  // ---- memory ----
  alloc(dtype: DType, numel: number): Storage;
  /** Returns the storage to the caching allocator; the storage must not be used again. */
  free(s: Storage): void;
  /** Copies host data into the storage starting at element `offset`. */
  write(s: Storage, data: HostArray, offset?: number): void;
  /** Copies the storage to a new host array (blocks until pending kernels are done). */
  readSync(s: Storage): HostArray;
  read(s: Storage): Promise<HostArray>;
  memory(): MemoryInfo;
  /** Releases cached (not live) buffers. */
  emptyCache(): void;
  /** Restarts peakLiveBytes from the current live bytes. */
  resetPeakMemory(): void;
  /**
   * The storage's own memory as a writable host array, for backends whose storages live on the host
   * (a checkpoint loader reads files straight into it); absent or null on device backends.
   */
  hostView?(s: Storage): HostArray | null;

  // ---- data movement ----
  fill(out: Storage, value: number): void;
  /** Converts between dtypes (f32<->bf16 rounds to nearest even; f32->i32 truncates toward zero). */
  cast(x: Storage, out: Storage): void;
  /**
   * dst[dstOffset + sum_i idx_i*dstStrides_i] = src[srcOffset + sum_i idx_i*srcStrides_i] for every
   * index in `shape`. Strides are in elements and may be 0 (broadcast). Same dtype on both sides.
   */
  stridedCopy(
    src: Storage,
    srcOffset: number,
    srcStrides: readonly number[],
    shape: readonly number[],
    dst: Storage,
    dstOffset: number,
    dstStrides: readonly number[],
  ): void;

  // ---- elementwise (f32) ----
  unary(op: UnaryOp, x: Storage, out: Storage, param: number): void;
  /** dx = dy * d op(x)/dx; y = op(x) from the forward pass (some rules use it). */
  unaryBackward(op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, param: number): void;
  /** NumPy broadcasting; aShape, bShape and outShape have the same rank (leading 1s padded by the engine). */
  binary(
    op: BinaryOp,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    out: Storage,
    outShape: readonly number[],
  ): void;

  /**
   * x viewed as [outer, r, inner]; out[o, i] = op over j of x[o, j, i]. For 'max', `argmax` (i32, same
   * size as out) receives the first j that reaches the maximum.
   */
  reduce(op: ReduceOp, x: Storage, outer: number, r: number, inner: number, out: Storage, argmax?: Storage): void;

  /** Backward of max: dx[o, j, i] = dy[o, i] where j == argmax[o, i], else 0 (dx overwritten). */
  maxBackward(dy: Storage, argmax: Storage, dx: Storage, outer: number, r: number, inner: number): void;

  // ---- matrix products ----
  /** C = alpha op(A) op(B) + beta C, plus bias[n] added to every row when given. */
  gemm(a: Storage, b: Storage, c: Storage, args: GemmArgs, bias?: Storage): void;

  // ---- fused nn kernels (f32; rows x cols views of the last axis) ----
  /** Softmax (or log-softmax) over the last axis of a [rows, cols] view. */
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void;
  /** dx from y = softmax(x) (or log-softmax) and dy. */
  softmaxBackward(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void;

  /** out = (x - mean) * rstd * w + b; saves mean and rstd per row. w/b may be absent (no affine). */
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
  ): void;
  /** Writes dx, and dw/db (overwritten, summed over rows) when given. */
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
  ): void;
  /** out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps). */
  rmsNorm(x: Storage, w: Storage | null, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void;
  rmsNormBackward(
    dy: Storage,
    x: Storage,
    w: Storage | null,
    rstd: Storage,
    dx: Storage,
    dw: Storage | null,
    rows: number,
    cols: number,
  ): void;

  /** out[i, :] = table[ids[i], :]; ids i32 in [0, vocab) (checked). */
  embedding(ids: Storage, table: Storage, out: Storage, n: number, dim: number, vocab: number): void;
  /** dTable (overwritten) = scatter-add of dy rows at ids. */
  embeddingBackward(ids: Storage, dy: Storage, dTable: Storage, n: number, dim: number, vocab: number): void;

  /**
   * Per-row loss of softmax cross-entropy with label smoothing s:
   * loss_i = (1-s) * (lse_i - x[i, t_i]) + s * (lse_i - mean_j x[i, j]); 0 for rows whose target is ignoreIndex.
   * Writes losses[rows] and lse[rows] (logsumexp, saved for backward). Targets outside [0, V) other
   * than ignoreIndex are an error.
   */
  crossEntropy(
    logits: Storage,
    targets: Storage,
    losses: Storage,
    lse: Storage,
    rows: number,
    cols: number,
    ignoreIndex: number,
    smoothing: number,
  ): void;
  /** dlogits = gradScale * (softmax(x) - (1-s) onehot(t) - s/V) per row; 0 rows for ignored targets. */
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
  ): void;

  /**
   * Rotary embedding, "rotate_half" convention (HF Llama/NeoX): x is [batch, heads, T, headDim]; the first
   * rotaryDim dims are rotated, the rest copied. angle = positions[b*T + t] * invFreq[i] (positions i32
   * [batch*T]), pairs (i, i + rotaryDim/2). inverse = true rotates by -angle (the backward pass).
   * tokenMajor: x and out are [batch, t, heads, headDim] instead.
   */
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
    tokenMajor?: boolean,
  ): void;

  /**
   * Fused scaled-dot-product attention, memory O(T) (no T x S matrix kept). q [B, Hq, T, D], k/v
   * [B, Hkv, S, D], out [B, Hq, T, D] (or as args.layout places them), lse [B, Hq, T] (logsumexp of the scaled, masked scores; -Infinity
   * for a row with no visible key, whose output is 0). keyMask (i32 [B, S], nonzero = attend) is optional.
   */
  attention(
    q: Storage,
    k: Storage,
    v: Storage,
    keyMask: Storage | null,
    out: Storage,
    lse: Storage,
    args: AttentionArgs,
  ): void;
  /** Writes dq, dk, dv (overwritten) from dOut, recomputing probabilities from lse. */
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
  ): void;

  /** out = x * keep / (1 - p), keep_i = dropoutUniform(seed, i) >= p. */
  dropout(x: Storage, out: Storage, p: number, seed: number): void;

  // ---- optimiser ----
  /**
   * One AdamW step (PyTorch semantics) over many tensors at once, in place on params, m and v:
   * p *= 1 - lr*wd_i; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
   */
  adamw(
    params: readonly Storage[],
    grads: readonly Storage[],
    m: readonly Storage[],
    v: readonly Storage[],
    weightDecay: readonly number[],
    args: AdamWArgs,
  ): void;
  /** Sum of squares of all elements of all the tensors, accumulated in double precision. */
  sumSquares(xs: readonly Storage[]): number;
}

// ---- deterministic counter-based random numbers shared by every backend ----
// Dropout masks must be identical on every backend and thread count, and reproducible in backward
// without storing them, so each element's draw is a pure function of (seed, index).

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Uniform in [0, 1) from (seed, index); index up to 2^53. The C++ twin is `dropout_uniform` in native/. */
export function dropoutUniform(seed: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4294967296) >>> 0;
  const h = mix32((lo ^ mix32((seed >>> 0) + Math.imul(hi, 0x9e3779b9))) >>> 0);
  return (h >>> 8) * (1 / 16777216);
}
