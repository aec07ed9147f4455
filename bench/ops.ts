// `npm run bench -- ops`: GEMM GFLOP/s on the reference model shapes and forward+backward time of the
// fused attention, layerNorm and crossEntropy, each beside PyTorch measured in the same run.
// One JSON line per case on stdout.

import { fileURLToPath } from 'node:url';
import * as L from '../src/index.js';
import { CpuBackend } from '../src/backends/cpu/index.js';
import { median, runTorch, time } from './util.js';

interface Case {
  name: string;
  kind: 'gemm' | 'attention' | 'layerNorm' | 'crossEntropy';
  repeats: number;
  [k: string]: number | string;
}

const CASES: Case[] = [
  { name: 'gemm 1024x768x3072', kind: 'gemm', m: 1024, k: 768, n: 3072, repeats: 10 },
  { name: 'gemm 1024x3072x768', kind: 'gemm', m: 1024, k: 3072, n: 768, repeats: 10 },
  { name: 'gemm 1024x768x768', kind: 'gemm', m: 1024, k: 768, n: 768, repeats: 15 },
  { name: 'gemm 1024x256x1024', kind: 'gemm', m: 1024, k: 256, n: 1024, repeats: 20 },
  { name: 'gemm 2048x384x8192', kind: 'gemm', m: 2048, k: 384, n: 8192, repeats: 6 },
  { name: 'gemm 1024x768x50257', kind: 'gemm', m: 1024, k: 768, n: 50257, repeats: 3 },
  { name: 'attention causal b8 h4 t128 d64', kind: 'attention', batch: 8, heads: 4, t: 128, headDim: 64, repeats: 10 },
  { name: 'attention causal b8 h6 t256 d64', kind: 'attention', batch: 8, heads: 6, t: 256, headDim: 64, repeats: 6 },
  { name: 'layerNorm 2048x384', kind: 'layerNorm', rows: 2048, cols: 384, repeats: 20 },
  { name: 'layerNorm 1024x768', kind: 'layerNorm', rows: 1024, cols: 768, repeats: 20 },
  { name: 'crossEntropy 1024x8192', kind: 'crossEntropy', rows: 1024, vocab: 8192, repeats: 10 },
  { name: 'crossEntropy 1024x50257', kind: 'crossEntropy', rows: 1024, vocab: 50257, repeats: 4 },
];

function loomCase(c: Case): () => void {
  const g = new L.Generator(1);
  const n = (k: string) => c[k] as number;
  if (c.kind === 'gemm') {
    const a = L.randn([n('m'), n('k')], { generator: g }).keep();
    const b = L.randn([n('n'), n('k')], { generator: g }).keep();
    return () => L.scope(() => void L.linear(a, b));
  }
  if (c.kind === 'attention') {
    const shape = [n('batch'), n('heads'), n('t'), n('headDim')];
    const [q, k, v] = [0, 1, 2].map(() => L.randn(shape, { generator: g, requiresGrad: true }).keep()) as [L.Tensor, L.Tensor, L.Tensor];
    const dy = L.randn(shape, { generator: g }).keep();
    return () =>
      L.scope(() => {
        L.attention(q, k, v, { causal: true }).backward(dy);
        for (const t of [q, k, v]) t.zeroGrad();
      });
  }
  if (c.kind === 'layerNorm') {
    const x = L.randn([n('rows'), n('cols')], { generator: g, requiresGrad: true }).keep();
    const w = L.randn([n('cols')], { generator: g, requiresGrad: true }).keep();
    const b = L.randn([n('cols')], { generator: g, requiresGrad: true }).keep();
    const dy = L.randn(x.shape, { generator: g }).keep();
    return () =>
      L.scope(() => {
        L.layerNorm(x, w, b, 1e-5).backward(dy);
        for (const t of [x, w, b]) t.zeroGrad();
      });
  }
  const x = L.randn([n('rows'), n('vocab')], { generator: g, requiresGrad: true }).keep();
  const targets = L.tensor(Array.from({ length: n('rows') }, (_, i) => (i * 7919) % n('vocab')), [n('rows')], { dtype: 'i32' }).keep();
  return () =>
    L.scope(() => {
      L.crossEntropy(x, targets).backward();
      x.zeroGrad();
    });
}

function flops(c: Case): number {
  return c.kind === 'gemm' ? 2 * (c.m as number) * (c.k as number) * (c.n as number) : 0;
}

export function benchOps(argv: string[]): void {
  const threads = Number(argv[argv.indexOf('--threads') + 1] ?? 0) || undefined;
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
  const cases = CASES.filter((c) => !only || c.name.includes(only));
  const backend = new CpuBackend();
  if (threads) backend.setNumThreads(threads);
  L.setBackend(backend);
  const script = fileURLToPath(new URL('../../bench/ops_torch.py', import.meta.url));
  const torch = argv.includes('--no-torch') ? [] : runTorch(script, ['--threads', String(backend.numThreads())], cases);
  if (torch instanceof Error) console.error(torch.message);
  for (const c of cases) {
    const fn = loomCase(c);
    const loomMedian = median(time(fn, c.repeats));
    const ref = Array.isArray(torch) ? torch.find((t) => t.case === c.name) : undefined;
    const tv = ref?.torch as Record<string, { median_s: number }> | undefined;
    const torchDefault = tv?.default?.median_s ?? tv?.unfused?.median_s;
    const line: Record<string, unknown> = {
      case: c.name,
      threads: backend.numThreads(),
      isa: backend.isa(),
      gemm: backend.gemmImpl(),
      loom: { median_s: loomMedian, ...(flops(c) ? { gflops: flops(c) / loomMedian / 1e9 } : {}) },
    };
    if (tv) {
      line.torch = Object.fromEntries(
        Object.entries(tv).map(([k, v]) => [k, { median_s: v.median_s, ...(flops(c) ? { gflops: flops(c) / v.median_s / 1e9 } : {}) }]),
      );
      // Speed ratio: > 1 means Loom is faster (against the unfused composition where both exist).
      line.speedup_vs_torch = torchDefault! / loomMedian;
      if (tv.fused) line.speedup_vs_torch_fused = tv.fused.median_s / loomMedian;
    }
    console.log(JSON.stringify(line));
  }
}
