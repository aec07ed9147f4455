// The Trainer's configuration: every knob with its default (transformers' TrainingArguments where
// one exists), resolved once into plain JSON that is saved as <runDir>/training_config.json.

import type { ScheduleName } from './schedule.js';
import type { ProgressMode } from './progress.js';

export interface TrainerConfig {
  /** Optimiser steps to run; or give `epochs` and data with batchesPerEpoch. */
  maxSteps?: number;
  epochs?: number;
  /** Micro-batches per optimiser step; each micro-batch's loss is scaled by 1/N (default 1). */
  gradientAccumulationSteps?: number;

  optimizer?: 'adamw' | 'sgd';
  /** Base learning rate (default 5e-5, transformers' default). */
  lr?: number;
  /** Decoupled weight decay of matrices; biases and norm weights (1-D) get none (default 0). */
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  /** SGD only. */
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;

  schedule?: ScheduleName;
  warmupSteps?: number;
  /** Warmup as a fraction of the run: ceil(ratio * maxSteps) (used when warmupSteps is absent). */
  warmupRatio?: number;
  /** LR floor as a fraction of the base LR (default 0). */
  minLrRatio?: number;
  /** Clip the global gradient norm to this (default 1.0; 0 turns clipping off). */
  maxGradNorm?: number;
  /**
   * 'bf16': matrix products (linear, matmul) round their operands to bf16 and sum in fp32 during
   * training and evaluation (setMatmulPrecision); weights, gradients, optimiser state and every other
   * op stay fp32, so there is no loss scaling to tune. About 2x faster GEMMs on AVX512_BF16 CPUs.
   */
  mixedPrecision?: 'no' | 'bf16';
  /** Seeds the per-step random streams (dropout) (default 42). */
  seed?: number;
  /**
   * Wall-clock budget of this train() call in minutes (default: none). When it is spent the loop
   * stops after the current step, evaluates and saves as at the last step, and returns
   * stoppedBy 'maxMinutes'; a resume gets a fresh budget.
   */
  maxMinutes?: number;

  /** Train-loss log line every N steps (default 10). */
  logEvery?: number;
  /** Evaluate every N steps (0: only at the end; default 0). */
  evalEvery?: number;
  /** Checkpoint every N steps (0: only at the end; default 0). Needs runDir. */
  saveEvery?: number;
  /** Keep the newest N checkpoints plus the best (default 2; 0 keeps all). */
  saveTotalLimit?: number;
  /** Evaluation key that picks the best checkpoint (default 'loss'). */
  bestMetric?: string;
  /** Default: false for names ending in 'loss' or 'perplexity', true otherwise. */
  greaterIsBetter?: boolean;
  /** Stop after this many evaluations without improvement (default: never). */
  earlyStoppingPatience?: number;
  /** An improvement must beat the best by more than this (default 0). */
  earlyStoppingThreshold?: number;

  /** Folder for metrics.jsonl, training_config.json and checkpoints/ (the final model goes here too). */
  runDir?: string;
  /** true: continue from the newest checkpoint in runDir/checkpoints (error if none); a path: that one. */
  resume?: boolean | string;
  progress?: ProgressMode;
  /** Ctrl-C saves a checkpoint and stops (default true when runDir is set). */
  handleSigint?: boolean;
}

export type ResolvedConfig = Required<Omit<TrainerConfig, 'epochs' | 'resume' | 'runDir' | 'earlyStoppingPatience' | 'warmupRatio' | 'maxMinutes'>> & {
  maxMinutes: number | null;
  epochs: number | null;
  runDir: string | null;
  resume: boolean | string;
  earlyStoppingPatience: number | null;
  warmupRatio: number | null;
};

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new Error(`trainer config: ${name} must be an integer >= 0, got ${v}`);
  return v;
}

/** Fills defaults and checks values; `batchesPerEpoch` turns epochs into steps. */
export function resolveConfig(c: TrainerConfig, batchesPerEpoch: number | undefined): ResolvedConfig {
  const accum = positiveInt('gradientAccumulationSteps', c.gradientAccumulationSteps ?? 1) || 1;
  let maxSteps = c.maxSteps;
  if (maxSteps === undefined) {
    if (c.epochs === undefined) throw new Error('trainer config: give maxSteps or epochs');
    if (!batchesPerEpoch) throw new Error('trainer config: epochs needs data that knows batchesPerEpoch; give maxSteps instead');
    maxSteps = Math.ceil((c.epochs * batchesPerEpoch) / accum);
  }
  positiveInt('maxSteps', maxSteps);
  if (c.mixedPrecision !== undefined && c.mixedPrecision !== 'no' && c.mixedPrecision !== 'bf16') {
    throw new Error(`trainer config: mixedPrecision must be 'no' or 'bf16', got ${String(c.mixedPrecision)}`);
  }
  const bestMetric = c.bestMetric ?? 'loss';
  if (c.maxMinutes !== undefined && !(c.maxMinutes > 0)) throw new Error(`trainer config: maxMinutes must be > 0, got ${c.maxMinutes}`);
  const warmupSteps = c.warmupSteps ?? (c.warmupRatio !== undefined ? Math.ceil(c.warmupRatio * maxSteps) : 0);
  return {
    maxSteps,
    epochs: c.epochs ?? null,
    gradientAccumulationSteps: accum,
    optimizer: c.optimizer ?? 'adamw',
    lr: c.lr ?? 5e-5,
    weightDecay: c.weightDecay ?? 0,
    betas: c.betas ?? [0.9, 0.999],
    eps: c.eps ?? 1e-8,
    momentum: c.momentum ?? 0,
    dampening: c.dampening ?? 0,
    nesterov: c.nesterov ?? false,
    schedule: c.schedule ?? 'linear',
    warmupSteps: positiveInt('warmupSteps', warmupSteps),
    warmupRatio: c.warmupRatio ?? null,
    minLrRatio: c.minLrRatio ?? 0,
    maxGradNorm: c.maxGradNorm ?? 1.0,
    mixedPrecision: c.mixedPrecision ?? 'no',
    seed: c.seed ?? 42,
    maxMinutes: c.maxMinutes ?? null,
    logEvery: positiveInt('logEvery', c.logEvery ?? 10),
    evalEvery: positiveInt('evalEvery', c.evalEvery ?? 0),
    saveEvery: positiveInt('saveEvery', c.saveEvery ?? 0),
    saveTotalLimit: positiveInt('saveTotalLimit', c.saveTotalLimit ?? 2),
    bestMetric,
    greaterIsBetter: c.greaterIsBetter ?? !/(loss|perplexity)$/.test(bestMetric),
    earlyStoppingPatience: c.earlyStoppingPatience ?? null,
    earlyStoppingThreshold: c.earlyStoppingThreshold ?? 0,
    runDir: c.runDir ?? null,
    resume: c.resume ?? false,
    progress: c.progress ?? 'auto',
    handleSigint: c.handleSigint ?? c.runDir !== undefined,
  };
}
