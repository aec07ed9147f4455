// A model's size from its config alone, without building it: the parameter count (exact, checked
// against the built models in tests) and the dimensions that size its activations. Used to refuse a
// config.json too large for this machine before allocating anything, and by the memory estimate.

import { llamaHeadDim, numLabels, type ModelConfig } from './config.js';
import type { Task } from './model.js';
import { formatBytes, memoryBudget, type MemoryBudget } from '../system_memory.js';

/** The dimensions that size a forward pass. */
export interface ModelShape {
  layers: number;
  hidden: number;
  /** MLP inner width. */
  ffn: number;
  heads: number;
  /** Key/value heads x head size (hidden for GPT-2 and BERT). */
  kvWidth: number;
  /** Width of the output layer per token: the vocabulary for LM heads, the labels otherwise. */
  outputs: number;
  /** 3 for gated MLPs (gate, up, down), 2 otherwise. */
  mlpMatrices: number;
  parameters: number;
}

const linear = (i: number, o: number, bias: boolean): number => i * o + (bias ? o : 0);

/** Parameters of the model `createModel(config, task)` builds (tied weights counted once). */
export function parameterCount(config: ModelConfig, task: Task): number {
  return modelShape(config, task).parameters;
}

export function modelShape(config: ModelConfig, task: Task): ModelShape {
  const labels = numLabels(config);
  if (config.model_type === 'gpt2') {
    const c = config.n_embd;
    const f = config.n_inner ?? 4 * c;
    const block = 4 * c + linear(c, 3 * c, true) + linear(c, c, true) + linear(c, f, true) + linear(f, c, true);
    let n = (config.vocab_size + config.n_positions) * c + config.n_layer * block + 2 * c;
    if (task === 'causal-lm' && !config.tie_word_embeddings) n += c * config.vocab_size;
    if (task === 'sequence-classification') n += c * labels;
    if (task === 'token-classification') n += linear(c, labels, true);
    return { layers: config.n_layer, hidden: c, ffn: f, heads: config.n_head, kvWidth: c, outputs: task === 'causal-lm' ? config.vocab_size : labels, mlpMatrices: 2, parameters: n };
  }
  if (config.model_type === 'bert') {
    const c = config.hidden_size;
    const f = config.intermediate_size;
    const block = 4 * linear(c, c, true) + 2 * c + linear(c, f, true) + linear(f, c, true) + 2 * c;
    let n = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * c + 2 * c + config.num_hidden_layers * block;
    if (task === 'masked-lm') n += linear(c, c, true) + 2 * c + config.vocab_size + (config.tie_word_embeddings ? 0 : c * config.vocab_size);
    if (task === 'sequence-classification') n += linear(c, c, true) + linear(c, labels, true);
    if (task === 'token-classification') n += linear(c, labels, true);
    return { layers: config.num_hidden_layers, hidden: c, ffn: f, heads: config.num_attention_heads, kvWidth: c, outputs: task === 'masked-lm' ? config.vocab_size : labels, mlpMatrices: 2, parameters: n };
  }
  const c = config.hidden_size;
  const f = config.intermediate_size;
  const d = llamaHeadDim(config);
  const hq = config.num_attention_heads * d;
  const hkv = config.num_key_value_heads * d;
  const qkvBias = config.attention_bias || config.model_type === 'qwen2';
  const block = linear(c, hq, qkvBias) + 2 * linear(c, hkv, qkvBias) + linear(hq, c, config.attention_bias) + 2 * linear(c, f, config.mlp_bias) + linear(f, c, config.mlp_bias) + 2 * c;
  let n = config.vocab_size * c + config.num_hidden_layers * block + c;
  if (task === 'causal-lm' && !config.tie_word_embeddings) n += c * config.vocab_size;
  if (task === 'sequence-classification') n += c * labels;
  if (task === 'token-classification') n += linear(c, labels, true);
  return { layers: config.num_hidden_layers, hidden: c, ffn: f, heads: config.num_attention_heads, kvWidth: hkv, outputs: task === 'causal-lm' ? config.vocab_size : labels, mlpMatrices: 3, parameters: n };
}

/**
 * Refuses a config whose weights alone exceed the memory budget, before anything is allocated: a
 * config.json claiming vocab_size 1e9 is an error naming the file, not a multi-GB allocation.
 */
export function assertModelFits(config: ModelConfig, task: Task, source: string, budget: MemoryBudget = memoryBudget()): void {
  const n = parameterCount(config, task);
  if (F32_BYTES * n > budget.bytes) {
    throw new Error(`${source}: describes a model of ${n.toExponential(2)} parameters (${formatBytes(F32_BYTES * n)} of weights), ` +
      `more than the ${formatBytes(budget.bytes)} available (${budget.source}); refusing to allocate it`);
  }
}

const F32_BYTES = 4;
