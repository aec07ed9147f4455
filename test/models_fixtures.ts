// Small configs and helpers shared by the model tests (not a test file itself).

import * as L from '../src/index.js';

/** Tiny configs of each family (a few thousand parameters: tests stay fast on 2 cores). */
export function tinyConfig(family: L.Family, overrides: Record<string, unknown> = {}): L.ModelConfig {
  const base: Record<L.Family, Record<string, unknown>> = {
    gpt2: { n_layer: 2, n_embd: 32, n_head: 4, n_inner: 64, vocab_size: 50, n_positions: 64, pad_token_id: 0, bos_token_id: 1, eos_token_id: 2 },
    bert: { num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, vocab_size: 50, max_position_embeddings: 64 },
    llama: { num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48, vocab_size: 50, max_position_embeddings: 64, pad_token_id: 0, bos_token_id: 1, eos_token_id: 2 },
  };
  return L.presetConfig(family, 'tiny', { ...base[family], ...overrides });
}

export function ids(rows: number[][]): L.Tensor {
  return L.tensor(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length], { dtype: 'i32' });
}

/** Forward in a scope (no grad) and return the logits on the host. */
export function logitsOf(model: L.PretrainedModel, inputs: L.ModelInputs): Float32Array {
  return L.noGrad(() => L.scope(() => model.forward(inputs).logits.dataSync() as Float32Array));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
