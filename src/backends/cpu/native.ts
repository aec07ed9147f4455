// Loader and typed surface of the native CPU addon (build/Release/loom_cpu.node, sources in native/).
// If the addon cannot load, one error lists what was tried and how to fix it.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type F32 = Float32Array;
type I32 = Int32Array;
type AnyArray = Float32Array | Int32Array | Uint16Array;

/** The functions exported by loom_cpu.node (argument order as in native/addon.cc and native/addon_nn.cc). */
export interface NativeAddon {
  setNumThreads(n: number): void;
  numThreads(): number;
  setIsa(isa: string): void;
  isa(): string;
  bestIsa(): string;
  setGemm(impl: string): void;
  gemmImpl(): string;
  hasBlas(): boolean;
  blasInfo(): string;
  dropoutUniform(seed: number, index: number): number;

  fill(out: AnyArray, value: number): void;
  cast(x: AnyArray, out: AnyArray): void;
  stridedCopy(
    src: AnyArray,
    srcOffset: number,
    srcStrides: readonly number[],
    shape: readonly number[],
    dst: AnyArray,
    dstOffset: number,
    dstStrides: readonly number[],
  ): void;
  unary(op: string, x: F32, out: F32, param: number): void;
  unaryBackward(op: string, x: F32, y: F32, dy: F32, dx: F32, param: number): void;
  binary(
    op: string,
    a: F32,
    aShape: readonly number[],
    b: F32,
    bShape: readonly number[],
    out: F32,
    outShape: readonly number[],
  ): void;
  dropout(x: F32, out: F32, p: number, seed: number): void;
  reduce(op: string, x: F32, outer: number, r: number, inner: number, out: F32, argmax: I32 | null): void;
  maxBackward(dy: F32, argmax: I32, dx: F32, outer: number, r: number, inner: number): void;
  gemm(
    a: F32,
    b: F32,
    c: F32,
    bias: F32 | null,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    strideC: number,
    alpha: number,
    beta: number,
    bf16: boolean,
  ): void;
  /** True when bf16 GEMMs run on AVX512_BF16 instructions (else they are emulated in fp32). */
  bf16GemmNative(): boolean;
  /** madvise(MADV_HUGEPAGE) on the buffer's whole 2 MiB pages (Linux; a no-op elsewhere). */
  adviseHugePages(buffer: ArrayBuffer): void;
  sumSquares(xs: readonly F32[]): number;
  adamw(
    params: readonly F32[],
    grads: readonly F32[],
    m: readonly F32[],
    v: readonly F32[],
    weightDecay: readonly number[],
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    step: number,
    gradScale: number,
  ): void;

  softmax(x: F32, out: F32, rows: number, cols: number, log: boolean): void;
  softmaxBackward(y: F32, dy: F32, dx: F32, rows: number, cols: number, log: boolean): void;
  layerNorm(
    x: F32,
    w: F32 | null,
    b: F32 | null,
    out: F32,
    mean: F32,
    rstd: F32,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormBackward(
    dy: F32,
    x: F32,
    w: F32 | null,
    mean: F32,
    rstd: F32,
    dx: F32,
    dw: F32 | null,
    db: F32 | null,
    rows: number,
    cols: number,
  ): void;
  rmsNorm(x: F32, w: F32 | null, out: F32, rstd: F32, rows: number, cols: number, eps: number): void;
  rmsNormBackward(dy: F32, x: F32, w: F32 | null, rstd: F32, dx: F32, dw: F32 | null, rows: number, cols: number): void;
  embedding(ids: I32, table: F32, out: F32, n: number, dim: number, vocab: number): void;
  embeddingBackward(ids: I32, dy: F32, dTable: F32, n: number, dim: number, vocab: number): void;
  crossEntropy(
    logits: F32,
    targets: I32,
    losses: F32,
    lse: F32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    smoothing: number,
  ): void;
  crossEntropyBackward(
    logits: F32,
    targets: I32,
    lse: F32,
    dlogits: F32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    smoothing: number,
    gradScale: number,
  ): void;
  rope(
    x: F32,
    out: F32,
    invFreq: F32,
    positions: I32,
    batch: number,
    heads: number,
    t: number,
    headDim: number,
    rotaryDim: number,
    inverse: boolean,
    tokenMajor: boolean,
  ): void;
  attention(
    q: F32,
    k: F32,
    v: F32,
    keyMask: I32 | null,
    out: F32,
    lse: F32,
    batch: number,
    headsQ: number,
    headsKV: number,
    tq: number,
    tk: number,
    headDim: number,
    scale: number,
    causal: boolean,
    dropoutP: number,
    seed: number,
    layout: readonly number[] | null,
  ): void;
  attentionBackward(
    q: F32,
    k: F32,
    v: F32,
    keyMask: I32 | null,
    out: F32,
    lse: F32,
    dOut: F32,
    dq: F32,
    dk: F32,
    dv: F32,
    batch: number,
    headsQ: number,
    headsKV: number,
    tq: number,
    tk: number,
    headDim: number,
    scale: number,
    causal: boolean,
    dropoutP: number,
    seed: number,
    layout: readonly number[] | null,
  ): void;
}

/** The package root: the nearest directory above this file with Loom's package.json (src/ or dist/src/). */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'loom') return dir;
      } catch {
        // unreadable package.json: keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

let cached: NativeAddon | null = null;

/**
 * Loads build/Release/loom_cpu.node, or only $LOOM_NATIVE_ADDON when set (an explicit build, such as
 * CI's AddressSanitizer one, must not be silently replaced by another). Throws one error listing every path tried
 * and how to build the addon.
 */
export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const candidates: string[] = [];
  if (process.env.LOOM_NATIVE_ADDON) candidates.push(process.env.LOOM_NATIVE_ADDON);
  else if (root) {
    candidates.push(join(root, 'build', 'Release', 'loom_cpu.node'));
    candidates.push(join(root, 'build', 'Debug', 'loom_cpu.node'));
  }
  const tried: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      tried.push(`  ${path}: not found`);
      continue;
    }
    try {
      cached = require(path) as NativeAddon;
      return cached;
    } catch (e) {
      tried.push(`  ${path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (!root) tried.push(`  (no package.json named "loom" above ${fileURLToPath(import.meta.url)})`);
  const install =
    process.platform === 'darwin'
      ? 'xcode-select --install'
      : 'apt-get install -y g++ make python3 libopenblas-openmp-dev   (Debian/Ubuntu)';
  throw new Error(
    [
      'Loom: could not load the native CPU backend (loom_cpu.node). Tried:',
      ...tried,
      'To fix it:',
      `  1. install a C++ toolchain and BLAS: ${install}`,
      `  2. build the addon: npm run build:native${root ? `   (in ${root})` : ''}`,
      'Without it, use the pure-TypeScript reference backend (much slower).',
    ].join('\n'),
  );
}
