// The memory a training run will need, estimated from its shapes before anything is allocated, and
// the refusal (with the estimate and what to change) when it exceeds the machine's budget: being
// told up front beats being killed by the OS an hour in. Model-agnostic: callers give the shapes.

import { formatBytes, memoryBudget, type MemoryBudget } from '../system_memory.js';

export interface TrainingShape {
  /** All parameters (f32), trained or frozen. */
  parameters: number;
  /** Parameters with gradients and optimiser state (all of them, or the LoRA adapters only). */
  trainable: number;
  layers: number;
  hidden: number;
  ffn: number;
  heads: number;
  /** Width of the output layer per token (the vocabulary for LM heads). */
  outputs: number;
  /** Output logits per sequence position (LM, token classification) or one per sequence. */
  perToken: boolean;
  /** 3 for gated MLPs (Llama), 2 otherwise. */
  mlpMatrices: number;
  /** Sequences per micro-batch and their length: what activations scale with. */
  batchSize: number;
  seqLen: number;
  /** Adam keeps two moments per trainable parameter, SGD with momentum one. */
  optimizerStates: number;
  /** Activation checkpointing: only each block's input is kept, plus one block recomputed in backward. */
  gradientCheckpointing?: boolean;
}

export interface MemoryEstimate {
  /** Bytes of each part. */
  parts: { weights: number; gradients: number; optimizer: number; activations: number; logits: number; runtime: number };
  total: number;
}

/** Node, the addon, the tokenizer and the allocator's slack: a tiny `loom pretrain` peaks at 75-100 MiB. */
const RUNTIME_BYTES = 96 * 2 ** 20;
const F32 = 4;

/**
 * Peak bytes of one training step. Activations: per layer and token, what the backward pass keeps
 * (the block's input, norm outputs, q/k/v, attention output, MLP input and hidden, residuals: about
 * 12 x hidden + 3 x the MLP width, counted generously for the caching allocator) plus one layer's
 * worth for the gradients in flight (attention is fused: nothing of size length^2 is kept). Logits:
 * the output, its log-softmax gradient and the gradient flowing back, 3 x batch x length x outputs.
 * Measured on GPT-2 shapes (1-4 layers, width 32-256, 128-8192 tokens a batch): 1.1-1.25x the
 * peak RSS of the run, i.e. on the safe side.
 */
export function estimateTrainingMemory(s: TrainingShape): MemoryEstimate {
  const tokens = s.batchSize * s.seqLen;
  const perLayerToken = 12 * s.hidden + (s.mlpMatrices + 1) * s.ffn + 2 * s.heads;
  const activations = s.gradientCheckpointing
    ? F32 * tokens * (s.layers * s.hidden + 2 * perLayerToken)
    : F32 * tokens * (s.layers + 1) * perLayerToken;
  const logits = F32 * 3 * (s.perToken ? tokens : s.batchSize) * s.outputs;
  const parts = {
    weights: F32 * s.parameters,
    gradients: F32 * s.trainable,
    optimizer: F32 * s.optimizerStates * s.trainable,
    activations,
    logits,
    runtime: RUNTIME_BYTES,
  };
  return { parts, total: Object.values(parts).reduce((a, b) => a + b, 0) };
}

/** Share of the budget a run may plan to use: the rest is for the OS, page cache and estimate error. */
export const SAFETY_MARGIN = 0.85;

export class MemoryError extends Error {
  override name = 'MemoryError';
}

/**
 * Throws a MemoryError when the estimate exceeds SAFETY_MARGIN x the budget, with the breakdown and
 * the changes that shrink what dominates. `lora`: whether LoRA is on (null: the command has no LoRA).
 */
export function checkTrainingMemory(s: TrainingShape, o: { lora: boolean | null; budget?: MemoryBudget }): MemoryEstimate {
  const est = estimateTrainingMemory(s);
  const budget = o.budget ?? memoryBudget();
  const allowed = budget.bytes * SAFETY_MARGIN;
  if (est.total <= allowed) return est;
  const p = est.parts;
  const parts = Object.entries(p).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ');
  const hints: string[] = [];
  const perBatch = p.activations + p.logits;
  if (perBatch > 0.2 * est.total && s.batchSize > 1) {
    const fit = Math.floor(s.batchSize * Math.max(0, allowed - (est.total - perBatch)) / perBatch);
    hints.push(fit >= 1
      ? `--batch-size ${fit} (with --grad-accum ${Math.ceil(s.batchSize / fit)} to keep the same effective batch)`
      : 'a smaller --batch-size with a larger --grad-accum');
  }
  if (p.activations > 0.2 * est.total && !s.gradientCheckpointing && s.layers > 2) {
    hints.push('--gradient-checkpointing (keeps one block\'s activations instead of all of them)');
  }
  if (perBatch > 0.2 * est.total && s.seqLen > 64) hints.push(`a shorter --seq-len (activations grow with it; ${s.seqLen} now)`);
  if (o.lora === false && p.gradients + p.optimizer > 0.3 * est.total) hints.push('--lora (gradients and optimiser state for the adapters only)');
  if (hints.length === 0) hints.push('a smaller model');
  throw new MemoryError(
    `this run needs about ${formatBytes(est.total)} (${parts}), more than ${Math.round(SAFETY_MARGIN * 100)}% of the ` +
      `${formatBytes(budget.bytes)} available (${budget.source}). Try ${hints.join(', or ')}. ` +
      'To run anyway: LOOM_MEMORY_LIMIT=none (or a size, e.g. 64GiB).',
  );
}
