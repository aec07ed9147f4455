// `npm run bench -- compare [--quick] [--pairs N] [--steps N] [--only TEXT] [--threads K] [--bf16]`: every case
// of the reference README's table, Loom (`bench train`) and the PyTorch reference
// (../shared/bench/reference/torch_train_bench.py, Debian torch + OpenMP OpenBLAS) run alternately,
// each in a fresh process; one JSON line per case with the ratios Loom / PyTorch of the medians.
// --bf16 runs Loom in bf16 mixed precision against PyTorch's fp32 (a separate table, not the fp32 targets).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median } from './util.js';

const RUN_JS = fileURLToPath(new URL('./run.js', import.meta.url));
// dist/bench/compare.js -> repo root is ../../; the reference lives beside the repo in ../shared.
const REFERENCE = fileURLToPath(new URL('../../../shared/bench/reference/torch_train_bench.py', import.meta.url));
// Debian's python3 (a pyenv python3 does not see python3-torch); LOOM_BENCH_PYTHON overrides it.
const PYTHON = process.env.LOOM_BENCH_PYTHON ?? '/usr/bin/python3';
const OPENMP_BLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

interface Case {
  model: 'gpt' | 'bert' | 'llama';
  size: string;
  batch: number;
  seq: number;
  steps: number;
  infer?: boolean;
  quick: boolean;
}

/** The reference README's table (and its forward-only line), plus the other families' tiny and small. */
const CASES: Case[] = [
  { model: 'gpt', size: 'tiny', batch: 8, seq: 128, steps: 20, quick: true },
  { model: 'gpt', size: 'small', batch: 8, seq: 256, steps: 15, quick: true },
  { model: 'gpt', size: 'small', batch: 8, seq: 256, steps: 15, infer: true, quick: true },
  { model: 'bert', size: 'tiny', batch: 16, seq: 128, steps: 20, quick: true },
  // Not in the README's table, but in issue 7's targets (tiny and small of every family).
  { model: 'bert', size: 'small', batch: 16, seq: 128, steps: 15, quick: true },
  { model: 'llama', size: 'tiny', batch: 8, seq: 128, steps: 20, quick: true },
  { model: 'llama', size: 'small', batch: 8, seq: 256, steps: 15, quick: true },
  { model: 'gpt', size: 'gpt2-124m', batch: 4, seq: 256, steps: 6, quick: false },
  { model: 'bert', size: 'bert-base', batch: 8, seq: 128, steps: 6, quick: false },
  { model: 'llama', size: 'smollm2-135m', batch: 4, seq: 256, steps: 6, quick: false },
];

const caseName = (c: Case): string => `${c.model} ${c.size} b${c.batch} t${c.seq}${c.infer ? ' infer' : ''}`;

function lastJson(stdout: string): Record<string, any> | null {
  const lines = stdout.split('\n').filter((l) => l.trim().startsWith('{'));
  return lines.length ? (JSON.parse(lines[lines.length - 1]!) as Record<string, any>) : null;
}

function torchAvailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  if (!existsSync(REFERENCE)) return `reference script not found at ${REFERENCE}`;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.status !== 0) return `python3-torch is not installed (${PYTHON} -c "import torch" failed: ${r.stderr.trim().split('\n').pop()})`;
  return null;
}

function runOne(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): Record<string, any> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  const out = r.status === 0 ? lastJson(r.stdout) : null;
  if (!out) throw new Error(`${what} failed (exit ${r.status}): ${r.stderr.slice(-1500)}`);
  return out;
}

const PHASE_NAMES: Record<string, string> = { fwd: 'forward', bwd: 'backward', opt: 'optimizer' };

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

function side(runs: Record<string, any>[]): Record<string, unknown> {
  const m = (f: (r: Record<string, any>) => number): number => median(runs.map(f));
  const phases = runs[0]!.phase_median_s as Record<string, number>;
  return {
    tokens_per_s: round(m((r) => r.tokens_per_s), 1),
    step_time_s: round(m((r) => r.step_time_s.median), 4),
    // The reference names its phases fwd/bwd/opt; both sides are reported as forward/backward/optimizer.
    phase_median_s: Object.fromEntries(Object.keys(phases ?? {}).map((k) => [PHASE_NAMES[k] ?? k, round(m((r) => r.phase_median_s[k]), 4)])),
    achieved_gflops: round(m((r) => r.achieved_gflops), 1),
    peak_rss_mib: round(m((r) => r.peak_rss_mib), 1),
    n_params: runs[0]!.n_params,
    n_matmul_params: runs[0]!.n_matmul_params,
    all_tokens_per_s: runs.map((r) => round(r.tokens_per_s, 1)),
    all_peak_rss_mib: runs.map((r) => round(r.peak_rss_mib, 1)),
  };
}

export function benchCompare(argv: string[]): void {
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const pairs = Number(flag('--pairs') ?? 3);
  const steps = flag('--steps') ? Number(flag('--steps')) : undefined;
  const threads = Number(flag('--threads') ?? 2);
  const only = flag('--only');
  const bf16 = argv.includes('--bf16');
  if (!Number.isInteger(pairs) || pairs < 1) {
    console.error('bench compare: --pairs must be an integer >= 1');
    process.exit(2);
  }
  const missing = torchAvailable();
  if (missing) {
    console.error(`bench compare: the PyTorch reference cannot run: ${missing}.
Install it as ../shared/bench/reference/README.md says: apt-get install -y python3-torch python3-numpy libopenblas0-openmp`);
    process.exit(1);
  }
  const torchEnv = { ...process.env, LD_LIBRARY_PATH: [OPENMP_BLAS, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  const cases = CASES.filter((c) => (!quick || c.quick) && (!only || caseName(c).includes(only)));
  for (const c of cases) {
    const n = steps ?? c.steps;
    const common = ['--model', c.model, '--size', c.size, '--batch', String(c.batch), '--seq', String(c.seq), '--steps', String(n), '--threads', String(threads), ...(c.infer ? ['--infer'] : [])];
    const loom: Record<string, any>[] = [];
    const torch: Record<string, any>[] = [];
    for (let p = 0; p < pairs; p++) {
      // Alternate, fresh processes: outside load on a shared machine hits both sides alike.
      loom.push(runOne(process.execPath, [RUN_JS, 'train', ...common, ...(bf16 ? ['--bf16'] : [])], process.env, `loom ${caseName(c)}`));
      torch.push(runOne(PYTHON, [REFERENCE, ...common], torchEnv, `torch ${caseName(c)}`));
      console.error(`[compare] ${caseName(c)} pair ${p + 1}/${pairs}: loom ${round(loom[p]!.tokens_per_s, 1)} tok/s, torch ${round(torch[p]!.tokens_per_s, 1)} tok/s`);
    }
    const l = side(loom);
    const t = side(torch);
    const t0 = torch[0]!;
    console.log(JSON.stringify({
      case: caseName(c) + (bf16 ? ' loom-bf16' : ''),
      loom_precision: bf16 ? 'bf16-mixed' : 'float32',
      tokens_per_s_ratio: round((l.tokens_per_s as number) / (t.tokens_per_s as number)),
      peak_rss_ratio: round((l.peak_rss_mib as number) / (t.peak_rss_mib as number)),
      pairs,
      steps: n,
      threads,
      loom: { ...l, backend: loom[0]!.backend },
      torch: { ...t, version: t0.torch, openblas_config: t0.openblas_config ?? null, openblas_threads: t0.openblas_threads ?? null },
    }));
  }
}
