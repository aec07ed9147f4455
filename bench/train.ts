// `npm run bench -- train`: one training (or forward-only) benchmark run of a reference shape, in this
// process, printing one JSON line with the fields of ../shared/bench/reference/torch_train_bench.py.
// `npm run bench -- compare` runs this and the PyTorch reference alternately in fresh processes.
//
// The step is the reference's: forward, cross-entropy over every position (BERT: ~15% labelled, the
// rest -100), backward, clip_grad_norm 1.0, AdamW (betas 0.9/0.95, eps 1e-8, lr 3e-4, weight decay
// 0.1 on >= 2-D parameters only), zero grad; fp32, no dropout, random token ids.

import { readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import * as L from '../src/index.js';
import { median } from './util.js';
import { KernelProfiler } from './profile.js';

export type ModelKind = 'gpt' | 'bert' | 'llama';
export const SIZES = ['tiny', 'small', 'gpt2-124m', 'bert-base', 'smollm2-135m', '124m'] as const;

export interface TrainArgs {
  model: ModelKind;
  size: string;
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
  threads: number;
  infer: boolean;
  tieHead: boolean;
  seed: number;
  lr: number;
  profile: boolean;
  gradCkpt: boolean;
  bf16: boolean;
}

const USAGE = `usage: npm run bench -- train --model gpt|bert|llama --size tiny|small|gpt2-124m|bert-base|smollm2-135m
  [--batch B] [--seq T] [--steps N] [--warmup N] [--threads K] [--infer] [--tie-head] [--seed S] [--profile] [--grad-ckpt] [--bf16]`;

export function parseTrainArgs(argv: string[]): TrainArgs {
  const a: TrainArgs = { model: 'gpt', size: 'tiny', batch: 8, seq: 128, steps: 10, warmup: 2, threads: 2, infer: false, tieHead: false, seed: 0, lr: 3e-4, profile: false, gradCkpt: false, bf16: false };
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const v = argv[i + 1];
    switch (f) {
      case '--model':
        if (v !== 'gpt' && v !== 'bert' && v !== 'llama') usage(`--model must be gpt, bert or llama, got ${v}`);
        a.model = v as ModelKind;
        i++;
        break;
      case '--size':
        if (!(SIZES as readonly string[]).includes(v ?? '')) usage(`--size must be one of ${SIZES.join(', ')}, got ${v}`);
        a.size = v!;
        i++;
        break;
      case '--batch': a.batch = num(f, v, 1); i++; break;
      case '--seq': a.seq = num(f, v, 2); i++; break;
      case '--steps': a.steps = num(f, v, 1); i++; break;
      case '--warmup': a.warmup = num(f, v, 0); i++; break;
      case '--threads': a.threads = num(f, v, 1); i++; break;
      case '--seed': a.seed = num(f, v, 0); i++; break;
      case '--lr': a.lr = Number(v); i++; break;
      case '--infer': a.infer = true; break;
      case '--tie-head': a.tieHead = true; break;
      case '--profile': a.profile = true; break;
      case '--grad-ckpt': a.gradCkpt = true; break;
      case '--bf16': a.bf16 = true; break;
      default: usage(`unknown flag ${f}`);
    }
  }
  return a;
}

function usage(msg: string): never {
  console.error(`bench train: ${msg}\n${USAGE}`);
  process.exit(2);
}

/** The reference preset names -> Loom's preset and config overrides (no dropout, the reference's eps). */
function modelFor(a: TrainArgs): { model: L.PretrainedModel; cfg: { n_layer: number; d: number; vocab: number; ctx: number } } {
  const preset: L.Preset = a.size === 'tiny' ? 'tiny' : a.size === 'small' ? 'small' : 'base';
  let model: L.PretrainedModel;
  if (a.model === 'gpt') {
    model = L.fromPreset('gpt2', preset, 'causal-lm', { seed: a.seed, config: { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 } });
    const c = model.config as L.GPT2Config;
    return { model, cfg: { n_layer: c.n_layer, d: c.n_embd, vocab: c.vocab_size, ctx: c.n_positions } };
  }
  if (a.model === 'bert') {
    model = L.fromPreset('bert', preset, 'masked-lm', { seed: a.seed, config: { hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 } });
    const c = model.config as L.BertConfig;
    return { model, cfg: { n_layer: c.num_hidden_layers, d: c.hidden_size, vocab: c.vocab_size, ctx: c.max_position_embeddings } };
  }
  // The reference's Llama: untied head unless --tie-head, RMSNorm eps 1e-5, context 2048.
  model = L.fromPreset('llama', preset, 'causal-lm', { seed: a.seed, config: { tie_word_embeddings: a.tieHead, rms_norm_eps: 1e-5, max_position_embeddings: 2048 } });
  const c = model.config as L.LlamaConfig;
  return { model, cfg: { n_layer: c.num_hidden_layers, d: c.hidden_size, vocab: c.vocab_size, ctx: c.max_position_embeddings } };
}

/** Parameters that take part in a matmul per token: every Linear/Conv1D weight and the LM head (as the reference counts). */
function matmulParams(kind: ModelKind, model: L.PretrainedModel, tied: boolean): number {
  let n = 0;
  for (const [name, t] of model.namedParameters()) {
    if (t.rank !== 2) continue;
    if (/wpe|position_embeddings|token_type_embeddings/.test(name)) continue;
    if (kind === 'llama' && !tied && /embed_tokens/.test(name)) continue;
    n += t.size;
  }
  return n;
}

/** Deterministic pseudo-random ints in [0, n) (an LCG; the reference draws its own, equally random ids). */
function randomInts(count: number, n: number, seed: number): Int32Array {
  let s = (seed * 2654435761 + 12345) >>> 0;
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.floor((s / 2 ** 32) * n);
  }
  return out;
}

function summarize(xs: number[]): { median: number; min: number; max: number; mean: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), mean: xs.reduce((p, x) => p + x, 0) / xs.length };
}

function cpuInfo(): { cpu: string | null; cpu_mhz_nominal: number | null; nproc: number } {
  let model: string | null = null;
  let mhz: number | null = null;
  try {
    for (const line of readFileSync('/proc/cpuinfo', 'utf8').split('\n')) {
      if (model === null && line.startsWith('model name')) model = line.split(':')[1]!.trim();
      if (mhz === null && line.startsWith('cpu MHz')) mhz = Number(line.split(':')[1]);
    }
  } catch {
    /* not Linux */
  }
  return { cpu: model ?? cpus()[0]?.model ?? null, cpu_mhz_nominal: mhz, nproc: cpus().length };
}

export function runTrainBench(a: TrainArgs): Record<string, unknown> {
  const backend = new L.CpuBackend();
  backend.setNumThreads(a.threads);
  const profiler = a.profile ? new KernelProfiler(backend) : null;
  L.setBackend(profiler ? profiler.backend : backend);

  const { model, cfg } = modelFor(a);
  // Mixed precision: GEMMs on bf16 operands with fp32 sums; everything else fp32 (reported apart from fp32 runs).
  L.setMatmulPrecision(a.bf16 ? 'bf16' : 'fp32');
  const B = a.batch;
  const T = a.seq;
  if (T > cfg.ctx) usage(`--seq ${T} exceeds the preset context ${cfg.ctx}`);
  const tied = a.model !== 'llama' || a.tieHead;
  const nParams = model.numParameters();
  const nMatmul = matmulParams(a.model, model, tied);

  const inputIds = L.tensor(randomInts(B * T, cfg.vocab, a.seed + 1), [B, T], { dtype: 'i32' }).keep();
  const tgt = randomInts(B * T, cfg.vocab, a.seed + 2);
  if (a.model === 'bert') {
    // MLM: ~15% of the positions carry a label, the rest are ignored (as the reference does).
    const keep = randomInts(B * T, 1000, a.seed + 3);
    for (let i = 0; i < tgt.length; i++) if (keep[i]! >= 150) tgt[i] = -100;
  }
  const targets = L.tensor(tgt, [B, T], { dtype: 'i32' }).keep();

  const times: number[] = [];
  const phases = { forward: [] as number[], backward: [] as number[], optimizer: [] as number[] };
  const losses: number[] = [];
  const total = a.warmup + a.steps;
  const now = (): number => performance.now() / 1000;

  if (a.infer) {
    model.eval();
    for (let i = 0; i < total; i++) {
      if (i === a.warmup) profiler?.reset();
      profiler?.setPhase('forward');
      const t0 = now();
      L.noGrad(() => L.scope(() => void model.forward({ inputIds })));
      const t1 = now();
      if (i >= a.warmup) times.push(t1 - t0);
      console.error(`[${a.model}/${a.size} infer] step ${i} ${(t1 - t0).toFixed(3)}s`);
    }
  } else {
    model.train();
    model.setGradientCheckpointing(a.gradCkpt);
    const params = model.namedParameters();
    const opt = new L.AdamW(L.defaultParamGroups(params, { weightDecay: 0.1 }), { lr: a.lr, betas: [0.9, 0.95], eps: 1e-8 });
    for (let i = 0; i < total; i++) {
      if (i === a.warmup) profiler?.reset();
      profiler?.setPhase('forward');
      const t0 = now();
      let t1 = t0;
      const loss = L.scope(() => {
        const out = model.forward({ inputIds });
        const l = L.crossEntropy(out.logits, targets);
        t1 = now();
        profiler?.setPhase('backward');
        l.backward();
        return l.item();
      });
      const t2 = now();
      profiler?.setPhase('optimizer');
      // clip at 1.0, the coefficient applied inside the AdamW update (what the Trainer does)
      opt.step({ gradScale: L.gradientClipScale(params, 1.0).scale });
      opt.zeroGrad();
      const t3 = now();
      losses.push(loss);
      if (i >= a.warmup) {
        times.push(t3 - t0);
        phases.forward.push(t1 - t0);
        phases.backward.push(t2 - t1);
        phases.optimizer.push(t3 - t2);
      }
      console.error(
        `[${a.model}/${a.size} train] step ${i} ${(t3 - t0).toFixed(3)}s (fwd ${(t1 - t0).toFixed(3)} bwd ${(t2 - t1).toFixed(3)} opt ${(t3 - t2).toFixed(3)}) loss ${loss.toFixed(4)}`,
      );
    }
    opt.dispose();
  }

  const st = summarize(times);
  const attn = 4 * cfg.n_layer * cfg.d * T;
  const fpt = a.infer ? 2 * nMatmul + attn : 6 * nMatmul + 3 * attn;
  const tokS = (B * T) / st.median;
  const out: Record<string, unknown> = {
    bench: a.infer ? 'infer' : 'train',
    impl: 'loom',
    model: a.model,
    size: a.size,
    config: model.config.model_type === 'gpt2' || model.config.model_type === 'bert' || model.config.model_type === 'llama' ? configSummary(model.config) : {},
    tie_head: tied,
    batch: B,
    seq: T,
    tokens_per_step: B * T,
    gradient_checkpointing: a.gradCkpt,
    dtype: a.bf16 ? 'bf16-mixed' : 'float32',
    bf16_gemm: a.bf16 ? (backend.bf16GemmNative() ? 'avx512_bf16' : 'emulated') : null,
    warmup: a.warmup,
    steps_timed: times.length,
    n_params: nParams,
    n_matmul_params: nMatmul,
    step_time_s: st,
    phase_median_s: a.infer ? {} : { forward: median(phases.forward), backward: median(phases.backward), optimizer: median(phases.optimizer) },
    tokens_per_s: tokS,
    tokens_per_s_best: (B * T) / st.min,
    model_flops_per_token: fpt,
    achieved_gflops: (fpt * tokS) / 1e9,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    loss_first: losses[0] ?? null,
    loss_last: losses[losses.length - 1] ?? null,
    optimizer: a.infer ? null : { name: 'AdamW', lr: a.lr, betas: [0.9, 0.95], weight_decay: 0.1, clip_grad_norm: 1.0 },
    threads: backend.numThreads(),
    backend: { name: backend.name, isa: backend.isa(), gemm: backend.gemmImpl(), blas: backend.hasBlas() ? backend.blasInfo() : null },
    node: process.version,
    host: hostname(),
    ...cpuInfo(),
  };
  if (profiler) out.profile = profiler.report(times.length, st.median, a.infer ? undefined : { forward: median(phases.forward), backward: median(phases.backward), optimizer: median(phases.optimizer) });
  model.dispose?.();
  return out;
}

function configSummary(c: L.ModelConfig): Record<string, unknown> {
  if (c.model_type === 'gpt2') return { n_layer: c.n_layer, n_head: c.n_head, d: c.n_embd, ffn: c.n_inner ?? 4 * c.n_embd, vocab: c.vocab_size, ctx: c.n_positions };
  if (c.model_type === 'bert') return { n_layer: c.num_hidden_layers, n_head: c.num_attention_heads, d: c.hidden_size, ffn: c.intermediate_size, vocab: c.vocab_size, ctx: c.max_position_embeddings };
  return { n_layer: c.num_hidden_layers, n_head: c.num_attention_heads, n_kv: c.num_key_value_heads, d: c.hidden_size, ffn: c.intermediate_size, vocab: c.vocab_size, ctx: c.max_position_embeddings, rope_theta: c.rope_theta };
}

/** `npm run bench -- train ...`: one JSON line on stdout, progress on stderr. */
export function benchTrain(argv: string[]): void {
  console.log(JSON.stringify(runTrainBench(parseTrainArgs(argv))));
}
