// What every recipe shares: the training flags and their mapping to TrainerConfig, reading labelled
// files by extension, loading model + tokenizer, and publishing the final model into the run folder.

import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { loadTokenizer, type LoomTokenizer } from '../io/tokenizer.js';
import { readCsv } from '../data/readers/csv.js';
import { readJsonl } from '../data/readers/jsonl.js';
import type { RowLike } from '../data/records.js';
import { IGNORE_INDEX } from '../data/collators/batch.js';
import type { PretrainedModel } from '../models/model.js';
import type { ScheduleName } from '../train/schedule.js';
import type { ProgressMode } from '../train/progress.js';
import type { TrainerConfig } from '../train/config.js';
import type { MetricRecord } from '../train/types.js';
import { faultPoint } from '../faults.js';
import { modelShape } from '../models/size.js';
import { checkTrainingMemory, type MemoryEstimate } from '../train/memory_estimate.js';

/** The common training flags of `loom pretrain` / `loom finetune` (and of their config files). */
export interface TrainFlags {
  steps?: number;
  epochs?: number;
  batchSize?: number;
  gradAccum?: number;
  /** Mixed precision: bf16 matrix products, fp32 everything else (TrainerConfig.mixedPrecision). */
  bf16?: boolean;
  /** Activation checkpointing per block (PretrainedModel.setGradientCheckpointing). */
  gradientCheckpointing?: boolean;
  /** Block length (pre-training) or truncation length (fine-tuning). */
  seqLen?: number;
  lr?: number;
  /** LR floor of the schedule (nanoGPT's min_lr), absolute; default 0. */
  minLr?: number;
  /** AdamW beta2 (default 0.999; nanoGPT uses 0.99 for small models). */
  adamBeta2?: number;
  warmup?: number;
  schedule?: ScheduleName;
  weightDecay?: number;
  evalEvery?: number;
  saveEvery?: number;
  logEvery?: number;
  seed?: number;
  resume?: boolean;
  /** Train even when the memory estimate exceeds the budget (see train/memory_estimate.ts). */
  skipMemoryCheck?: boolean;
  /** Wall-clock budget of this invocation in minutes: stop, evaluate and save when spent. */
  maxMinutes?: number;
  progress?: ProgressMode;
  /** Where progress lines go (default stderr). */
  output?: Writable & { isTTY?: boolean };
}

/** What a training recipe returns (and `loom pretrain/finetune --json` prints). */
export interface RunResult {
  out: string;
  steps: number;
  stoppedBy: string;
  seconds: number;
  /** Tokens (LM) or padded input tokens (fine-tuning) processed in this invocation. */
  tokens: number;
  /** The last evaluation's metrics (empty without evaluation data). */
  eval: MetricRecord;
}

/** A bad input the user can fix (missing file, wrong head, unknown column): exit code 1, one line. */
export class TaskError extends Error {
  override name = 'TaskError';
}

export function trainerConfig(f: TrainFlags, out: string, defaults: { lr: number; steps?: number; epochs?: number }): TrainerConfig {
  const steps = f.steps ?? (f.epochs === undefined ? defaults.steps : undefined);
  const epochs = steps === undefined ? f.epochs ?? defaults.epochs : undefined;
  const lr = f.lr ?? defaults.lr;
  if (f.minLr !== undefined && !(f.minLr >= 0 && f.minLr <= lr)) throw new TaskError(`--min-lr ${f.minLr} must be between 0 and the peak --lr ${lr}`);
  if (f.adamBeta2 !== undefined && !(f.adamBeta2 > 0 && f.adamBeta2 < 1)) throw new TaskError(`--adam-beta2 ${f.adamBeta2} must be in (0, 1)`);
  if (f.maxMinutes !== undefined && !(f.maxMinutes > 0)) throw new TaskError(`--max-minutes ${f.maxMinutes} must be > 0`);
  return {
    maxSteps: steps,
    epochs,
    gradientAccumulationSteps: f.gradAccum ?? 1,
    mixedPrecision: f.bf16 ? 'bf16' : 'no',
    lr,
    minLrRatio: f.minLr === undefined ? undefined : f.minLr / lr,
    betas: f.adamBeta2 === undefined ? undefined : [0.9, f.adamBeta2],
    maxMinutes: f.maxMinutes,
    warmupSteps: f.warmup,
    warmupRatio: f.warmup === undefined ? 0.05 : undefined,
    schedule: f.schedule ?? 'linear',
    weightDecay: f.weightDecay ?? 0.01,
    evalEvery: f.evalEvery ?? 0,
    saveEvery: f.saveEvery ?? 0,
    logEvery: f.logEvery ?? 10,
    seed: f.seed ?? 42,
    runDir: out,
    resume: f.resume ?? false,
    progress: f.progress ?? 'auto',
  };
}

export async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

export async function requireFile(path: string, what: string): Promise<void> {
  if (!(await exists(path))) throw new TaskError(`${path}: ${what} not found`);
}

/** Checks that `dir` is a model folder before anything heavier runs, with a clear message. */
export async function requireModelDir(dir: string): Promise<void> {
  if (!(await exists(dir))) throw new TaskError(`${dir}: model folder not found`);
  if (!(await exists(join(dir, 'config.json')))) throw new TaskError(`${dir}: not a model folder (no config.json)`);
}

/** The tokenizer of a model folder (or of an explicit path). */
export async function tokenizerFor(modelDir: string, explicit?: string): Promise<LoomTokenizer> {
  const path = explicit ?? modelDir;
  if (!(await exists(join(path, 'tokenizer.json'))) && !path.endsWith('.json')) {
    throw new TaskError(`${path}: no tokenizer.json (give --tokenizer DIR, or copy the tokenizer files into the model folder)`);
  }
  return loadTokenizer(path);
}

/** Rows of a labelled file: JSONL objects or CSV/TSV rows, chosen by extension. */
export function readRows(file: string): AsyncIterable<RowLike> {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.json') return readJsonl(file);
  if (ext === '.csv' || ext === '.tsv') return readCsv(file);
  throw new TaskError(`${file}: unknown format "${ext}" (use .jsonl, .csv or .tsv)`);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** Pad id for collation: the tokenizer's pad, else EOS (GPT-2 has no pad), else 0. */
export function padIdOf(tokenizer: LoomTokenizer): number {
  return tokenizer.padId ?? tokenizer.eosId ?? 0;
}

/**
 * GPT-2 and Llama pool sequence classification at the last non-pad token and need pad_token_id;
 * a Hub GPT-2 has none, so the collation pad id is written into the config (saved with the model).
 */
export function ensurePadToken(model: PretrainedModel, tokenizer: LoomTokenizer): void {
  const c = model.config as { pad_token_id: number | null };
  if (c.pad_token_id === null) c.pad_token_id = padIdOf(tokenizer);
}

/**
 * Publishes the final model into the run folder: saved into a temp folder inside `out`, then each
 * file renamed in with config.json last, so `out` is only a model folder once it is complete, and
 * checkpoints/ and metrics.jsonl beside it are never copied (writeFolderAtomic would copy them).
 */
export async function publishModel(out: string, write: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(out, { recursive: true });
  const tmp = join(out, `.final-tmp-${process.pid}`);
  // Left by a run killed while publishing (its model save's own temp folders start with '..final-tmp-').
  for (const f of await readdir(out)) if (/^\.+final-tmp-\d+/.test(f)) await rm(join(out, f), { recursive: true, force: true });
  try {
    await write(tmp);
    const files = await readdir(tmp);
    for (const f of await readdir(out)) {
      if (/^(model-\d{5}-of-\d{5}\.safetensors|model\.safetensors(\.index\.json)?)$/.test(f) && !files.includes(f)) await rm(join(out, f));
    }
    const order = [...files.filter((f) => f !== 'config.json'), ...files.filter((f) => f === 'config.json')];
    for (const f of order) {
      await rm(join(out, f), { recursive: true, force: true });
      await rename(join(tmp, f), join(out, f));
      faultPoint('publish file');
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Refuses a run whose estimated peak memory exceeds the budget (MemoryError with the estimate and
 * what to change), before the first step; the model is loaded (its weights are part of the estimate).
 */
export function checkMemory(model: PretrainedModel, o: { batchSize: number; seqLen: number; lora: boolean | null; skip?: boolean }): MemoryEstimate | null {
  if (o.skip) return null;
  const s = modelShape(model.config, model.task);
  return checkTrainingMemory({
    ...s,
    parameters: model.numParameters(),
    trainable: model.numParameters({ trainableOnly: true }),
    perToken: model.task !== 'sequence-classification',
    batchSize: o.batchSize,
    seqLen: o.seqLen,
    optimizerStates: 2,
    gradientCheckpointing: model.gradientCheckpointing,
  }, { lora: o.lora });
}

/** Shuffles in place with a seeded LCG (example order before batching). */
export function shuffled<T>(items: T[], seed: number): T[] {
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = items.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Groups items into batches of `size` (the last one may be smaller). */
export function batchesOf<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Non-ignored label positions of a batch: the loss weight for a per-token mean. */
export function countLabels(labels: Int32Array): number {
  let n = 0;
  for (const y of labels) if (y !== IGNORE_INDEX) n++;
  return n;
}

/** The longest sequence the model takes (n_positions / max_position_embeddings). */
export function maxPositions(model: PretrainedModel): number {
  const c = model.config as { n_positions?: number; max_position_embeddings?: number };
  return c.n_positions ?? c.max_position_embeddings ?? Infinity;
}

/** A requested length clamped to what the model takes (inputs are truncated to it). */
export function fitLength(model: PretrainedModel, seqLen: number): number {
  return Math.min(seqLen, maxPositions(model));
}
