// Configs and presets: transformers' defaults, the preset shapes (parameter counts of the real
// models), RoPE scaling kinds, Mistral/Qwen2 configs through the Llama code.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import { ids, tinyConfig } from './models_fixtures.js';

describe('configs and presets', () => {
  it('base presets have the parameter counts of GPT-2 small, BERT-base and SmolLM2-135M', () => {
    const expected: [L.Family, L.Preset, number][] = [
      ['gpt2', 'base', 124_439_808], ['bert', 'base', 109_514_298], ['llama', 'base', 134_515_008],
      ['gpt2', 'tiny', 5_518_848], ['llama', 'small', 15_733_632],
    ];
    for (const [family, preset, count] of expected) {
      // init: false allocates without drawing 100M random numbers.
      const model = L.fromPreset(family, preset, undefined, { init: false });
      assert.equal(model.numParameters(), count, `${family} ${preset}`);
      model.dispose();
    }
  });

  it('fresh models use the standard initialisations, reproducibly by seed', () => {
    const std = (t: L.Tensor) => Math.sqrt((t.dataSync() as Float32Array).reduce((s, x) => s + x * x, 0) / t.size);
    const model = L.fromPreset('gpt2', 'tiny', 'causal-lm', { seed: 5 });
    const state = model.stateDict();
    assert.ok(Math.abs(std(state.get('transformer.h.0.attn.c_attn.weight')!) - 0.02) < 0.001);
    assert.ok(Math.abs(std(state.get('transformer.h.0.mlp.c_proj.weight')!) - 0.02 / Math.sqrt(8)) < 0.0005, 'c_proj scaled by 1/sqrt(2 n_layer)');
    assert.ok((state.get('transformer.h.1.ln_2.weight')!.dataSync() as Float32Array).every((v) => v === 1));
    assert.ok((state.get('transformer.h.1.attn.c_attn.bias')!.dataSync() as Float32Array).every((v) => v === 0));
    const again = L.fromPreset('gpt2', 'tiny', 'causal-lm', { seed: 5 });
    assert.deepEqual(again.stateDict().get('transformer.wte.weight')!.dataSync(), state.get('transformer.wte.weight')!.dataSync());
    const llama = L.createModel(tinyConfig('llama'), 'causal-lm');
    assert.ok((llama.stateDict().get('model.embed_tokens.weight')!.dataSync() as Float32Array).subarray(0, 32).every((v) => v === 0), 'pad row is zero');
    for (const m of [model, again, llama]) m.dispose();
  });

  it('missing fields take transformers defaults; extra fields are kept for save', () => {
    const c = L.parseConfig({ model_type: 'gpt2', n_layer: 3, summary_type: 'cls_index' });
    assert.equal(c.model_type, 'gpt2');
    assert.deepEqual([c.n_embd, c.n_head, c.vocab_size, c.layer_norm_epsilon, c.activation_function], [768, 12, 50257, 1e-5, 'gelu_new']);
    assert.deepEqual(c.extra, { summary_type: 'cls_index' });
    const json = L.configToJSON(c);
    assert.equal(json.summary_type, 'cls_index');
    assert.equal(json.torch_dtype, 'float32');
  });

  it('Mistral and Qwen2 configs build the Llama code with their own class names', () => {
    const mistral = L.createModel(tinyConfig('llama', { model_type: 'mistral', sliding_window: 8 }), 'causal-lm');
    assert.equal(mistral.architecture, 'MistralForCausalLM');
    assert.throws(() => L.scope(() => mistral.forward({ inputIds: ids([[1, 2, 3, 4, 5, 6, 7, 8, 9]]) })), /9 tokens exceed sliding_window \(8\)/);
    const qwen = L.createModel(tinyConfig('llama', { model_type: 'qwen2' }), 'token-classification');
    assert.equal(qwen.architecture, 'Qwen2ForTokenClassification');
    const names = qwen.namedParameters().map(([n]) => n);
    assert.ok(names.includes('model.layers.0.self_attn.k_proj.bias') && !names.includes('model.layers.0.self_attn.o_proj.bias'));
    assert.equal(L.configToJSON(qwen.config).head_dim, 8, 'head_dim is written, never null');
    mistral.dispose();
    qwen.dispose();
  });

  it('rope_scaling kinds change the inverse frequencies as transformers does', () => {
    const base = tinyConfig('llama', { max_position_embeddings: 32 }) as L.LlamaConfig;
    const plain = L.llamaInvFreq(base, 10);
    assert.deepEqual(plain, L.ropeInvFreq(8, 10000));
    const linear = L.llamaInvFreq({ ...base, rope_scaling: { rope_type: 'linear', factor: 4 } }, 10);
    linear.forEach((f, i) => assert.ok(Math.abs(f - plain[i]! / 4) < 1e-9));
    const dynamic = { ...base, rope_scaling: { rope_type: 'dynamic' as const, factor: 2 } };
    assert.deepEqual(L.llamaInvFreq(dynamic, 32), plain, 'dynamic: unchanged within the trained length');
    const dim = 8;
    const theta = 10000 * ((2 * 64) / 32 - 1) ** (dim / (dim - 2));
    assert.deepEqual(L.llamaInvFreq(dynamic, 64), L.ropeInvFreq(dim, theta), 'dynamic: NTK base beyond it');
    const llama3 = L.llamaInvFreq({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } }, 10);
    // wavelengths 2pi/f: 6.3 (< 64/4: kept), 63 (between 16 and 64: blended), 628 and 6283 (> 64: divided by 8).
    assert.equal(llama3[0], plain[0]);
    assert.ok(llama3[1]! < plain[1]! && llama3[1]! > plain[1]! / 8);
    for (const i of [2, 3]) assert.ok(Math.abs(llama3[i]! - plain[i]! / 8) < 1e-9);
  });
});
