// The small contracts the Trainer needs from models, data and metrics, so that any model fits
// (src/models' Modules, or a hand-built network in a test). No implementation here.

import type { Tensor } from '../engine/tensor.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface TrainableModel {
  /** Every parameter by name; only those with requiresGrad are optimised (frozen ones never are). */
  namedParameters(): Iterable<[string, Tensor]>;
  /** Training mode (dropout on) and evaluation mode (off). */
  train(): void;
  eval(): void;
  /** Writes the model's Hugging Face folder (config.json, model.safetensors). Optional. */
  save?(dir: string): Promise<void>;
  /**
   * Reads back what save() wrote, for resume. Needed only when save() does not write every
   * parameter under its namedParameters() name and shape (tied or transposed weights); without it
   * the Trainer reads model.safetensors by those names.
   */
  load?(dir: string): Promise<void>;
}

/** Where a micro-batch sits in the run; `seed` is a pure function of (run seed, step, micro). */
export interface StepContext {
  /** 1-based optimiser step being computed (0 during an evaluation at the start). */
  step: number;
  /** 0-based micro-batch within the step (gradient accumulation). */
  micro: number;
  training: boolean;
  seed: number;
}

/** What a step function returns: the loss, plus whatever the evaluator wants (logits, labels). */
export interface StepOutput {
  /** Scalar mean loss of the batch. */
  loss: Tensor;
  /** Weight of this batch in the evaluation's mean loss (tokens or examples); default 1. */
  count?: number;
  /** Tokens (or examples) processed, for the throughput figure. */
  tokens?: number;
  logits?: Tensor;
  /** Targets for the evaluator: i32 tensor or host array, -100 = ignored. */
  labels?: Tensor | Int32Array;
  [key: string]: unknown;
}

export type StepFn<M, B> = (model: M, batch: B, ctx: StepContext) => StepOutput;

/** An endless stream of training batches whose position is plain JSON (the checkpoint's cursor). */
export interface TrainData<B> {
  /** The next batch; wraps around to the next epoch by itself. */
  next(): B | Promise<B>;
  /** Position such that after restore(cursor) the stream continues with the same batches. */
  cursor(): JsonValue;
  restore(cursor: JsonValue): void;
  /** Epochs done as a fraction (1.5 = halfway through the second), for logs. */
  epoch(): number;
  /** Batches per epoch, when known (lets `epochs` set the run length). */
  batchesPerEpoch?: number;
}

export type MetricValue = number | string | number[] | number[][] | string[];
export type MetricRecord = Record<string, MetricValue>;

/** Accumulates one evaluation pass; a fresh one is made per evaluation. */
export interface Evaluator<B> {
  /** Called inside the batch's memory scope: copy what is needed to the host. */
  update(out: StepOutput, batch: B): void;
  /** Final metrics; `loss` is the pass's weighted mean loss. */
  compute(loss: number): MetricRecord;
}

/** Anything whose state is one 32-bit number (engine Generator) and must survive a resume. */
export interface RngLike {
  getState(): number;
  setState(state: number): void;
}
