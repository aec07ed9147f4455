// nn semantics: Module paths, state dicts, freezing, train/eval, disposal; LoRA (fresh adapter is a
// no-op, merge equals the unmerged forward, only adapters train, merge-and-unload gives a plain model).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import { ids, logitsOf, maxAbsDiff, tinyConfig } from './models_fixtures.js';

class Tiny extends L.Module {
  readonly emb: L.Embedding;
  readonly blocks: L.ModuleList<L.Linear>;
  readonly norm: L.LayerNorm;
  constructor() {
    super();
    this.emb = this.registerModule('emb', new L.Embedding(10, 4));
    this.blocks = this.registerModule('blocks', new L.ModuleList([new L.Linear(4, 4), new L.Linear(4, 4, { bias: false })]));
    this.norm = this.registerModule('norm', new L.LayerNorm(4));
  }
}

describe('Module', () => {
  it('names parameters by dotted path, in registration order', () => {
    const m = new Tiny();
    assert.deepEqual(
      m.namedParameters().map(([n]) => n),
      ['emb.weight', 'blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight', 'norm.weight', 'norm.bias'],
    );
    assert.equal(m.numParameters(), 40 + 20 + 16 + 8);
    assert.ok(m.parameters().every((p) => p.requiresGrad));
    assert.equal(m.getSubmodule('blocks.1'), m.blocks.items[1]);
    assert.throws(() => m.getSubmodule('blocks.7'), /no submodule 'blocks.7'/);
    m.dispose();
  });

  it('loadStateDict copies in place and reports missing and unexpected keys', () => {
    const a = new Tiny();
    const b = new Tiny();
    const state = a.stateDict();
    const weightB = b.emb.weight;
    const result = b.loadStateDict(state);
    assert.deepEqual(result, { missing: [], unexpected: [] });
    assert.equal(b.emb.weight, weightB, 'same tensor, new values');
    assert.deepEqual(b.emb.weight.dataSync(), a.emb.weight.dataSync());

    const partial = new Map<string, L.StateValue>(state);
    partial.delete('norm.bias');
    partial.set('extra.weight', new Float32Array(3));
    assert.throws(() => b.loadStateDict(partial), /missing keys: norm.bias; unexpected keys: extra.weight/);
    assert.deepEqual(b.loadStateDict(partial, { strict: false }), { missing: ['norm.bias'], unexpected: ['extra.weight'] });
    const wrong = new Map([['emb.weight', new Float32Array(7)]]);
    assert.throws(() => b.loadStateDict(wrong, { strict: false, source: 'x.safetensors' }), /x.safetensors: emb.weight has shape 7 values, expected \[10,4\]/);
    a.dispose();
    b.dispose();
  });

  it('freeze/unfreeze select by name pattern; train/eval reach every module', () => {
    const m = new Tiny();
    assert.equal(m.freeze(), 6);
    assert.equal(m.unfreeze('blocks.0'), 2);
    assert.deepEqual(m.trainableParameters().map(([n]) => n), ['blocks.0.weight', 'blocks.0.bias']);
    m.unfreeze();
    m.freeze('bias');
    assert.deepEqual(m.namedParameters().filter(([, t]) => !t.requiresGrad).map(([n]) => n), ['blocks.0.bias', 'norm.bias']);
    m.unfreeze();
    m.freeze(/^blocks\.\d+\.weight$/);
    assert.equal(m.trainableParameters().length, 4);
    m.unfreeze();
    m.freeze(['emb', 'norm.*']);
    assert.deepEqual(m.trainableParameters().map(([n]) => n), ['blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight']);
    m.eval();
    assert.ok(m.namedModules().every(([, x]) => !x.training));
    m.train();
    assert.ok(m.namedModules().every(([, x]) => x.training));
    m.dispose();
  });

  it('dispose frees every parameter (tied weights once)', () => {
    const before = L.liveTensorCount();
    const model = L.createModel(tinyConfig('gpt2'), 'causal-lm');
    assert.ok(L.liveTensorCount() > before);
    assert.equal(model.stateDict().has('lm_head.weight'), false, 'the tied head is not a separate parameter');
    model.dispose();
    assert.equal(L.liveTensorCount(), before);
  });

  it('a forward pass in a scope leaves only the parameters alive; backward reaches every parameter', () => {
    for (const family of ['gpt2', 'bert', 'llama'] as const) {
      const model = L.createModel(tinyConfig(family), undefined, { seed: 3 }).eval();
      const live = L.liveTensorCount();
      const loss = L.scope(() => model.forward({ inputIds: ids([[1, 5, 7, 9]]), labels: ids([[1, 5, 7, 9]]) }).loss!);
      loss.backward();
      loss.dispose();
      assert.ok(model.parameters().every((p) => p.grad !== null), `${family}: every parameter has a gradient`);
      model.zeroGrad();
      assert.equal(L.liveTensorCount(), live, `${family}: no tensor leaked`);
      model.dispose();
    }
  });

  it('Dropout is the identity in eval mode and drops in training mode', () => {
    const d = new L.Dropout(0.5);
    const x = L.ones([1000]);
    const y = d.forward(x);
    assert.ok((y.dataSync() as Float32Array).some((v) => v === 0));
    d.eval();
    assert.equal(d.forward(x), x);
    y.dispose();
    x.dispose();
  });
});

describe('LoRA', () => {
  it('a fresh adapter leaves the output unchanged; PEFT shapes and init', () => {
    const model = L.createModel(tinyConfig('llama'), 'causal-lm', { seed: 1 }).eval();
    const input = { inputIds: ids([[1, 4, 9, 16, 25]]) };
    const before = logitsOf(model, input);
    const names = model.namedParameters().map(([n]) => n);
    const state = L.applyLora(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] });
    assert.equal(state.layers.size, 4);
    const lora = state.layers.get('model.layers.0.self_attn.q_proj')!;
    assert.deepEqual([...lora.lora_A.weight.shape], [4, 32]);
    assert.deepEqual([...lora.lora_B.weight.shape], [32, 4]);
    assert.ok((lora.lora_B.weight.dataSync() as Float32Array).every((v) => v === 0), 'lora_B starts at zero');
    const bound = 1 / Math.sqrt(32);
    assert.ok((lora.lora_A.weight.dataSync() as Float32Array).every((v) => Math.abs(v) <= bound), 'kaiming-uniform bound');
    assert.equal(lora.scaling, 2);
    // Base parameter names are unchanged; the adapters add lora_A/lora_B beside them.
    const after = model.namedParameters().map(([n]) => n);
    assert.deepEqual(after.filter((n) => !n.includes('lora_')), names);
    assert.ok(after.includes('model.layers.1.self_attn.v_proj.lora_B.weight'));
    assert.deepEqual(logitsOf(model, input), before);
    model.dispose();
  });

  it('only the adapters train; merge equals the unmerged forward; unmerge restores', () => {
    const model = L.createModel(tinyConfig('gpt2'), 'causal-lm', { seed: 2 }).eval();
    L.applyLora(model, { r: 2, alpha: 4, targetModules: ['c_attn', 'mlp.c_proj'], seed: 5 });
    assert.deepEqual(
      model.trainableParameters().map(([n]) => n),
      ['transformer.h.0.attn.c_attn.lora_A.weight', 'transformer.h.0.attn.c_attn.lora_B.weight',
        'transformer.h.0.mlp.c_proj.lora_A.weight', 'transformer.h.0.mlp.c_proj.lora_B.weight',
        'transformer.h.1.attn.c_attn.lora_A.weight', 'transformer.h.1.attn.c_attn.lora_B.weight',
        'transformer.h.1.mlp.c_proj.lora_A.weight', 'transformer.h.1.mlp.c_proj.lora_B.weight'],
    );
    const input = { inputIds: ids([[3, 1, 4, 1, 5, 9]]), labels: ids([[3, 1, 4, 1, 5, 9]]) };
    const loss = L.scope(() => model.forward(input).loss!);
    loss.backward();
    loss.dispose();
    assert.ok(model.namedParameters().every(([n, p]) => (p.grad !== null) === n.includes('lora_')), 'gradients only for adapters');
    model.zeroGrad();
    // Give lora_B values so the update is not zero (Conv1D layout: fan_in_fan_out).
    const state = L.loraState(model)!;
    const g = new L.Generator(9);
    for (const l of state.layers.values()) L.initNormal(l.lora_B.weight, 0.5, g);
    const base = state.layers.get('transformer.h.0.attn.c_attn')!.weight.dataSync().slice();
    const unmerged = logitsOf(model, input);
    L.mergeLora(model);
    const merged = logitsOf(model, input);
    assert.ok(maxAbsDiff(merged, unmerged) < 1e-4, `merged vs unmerged ${maxAbsDiff(merged, unmerged)}`);
    assert.ok(maxAbsDiff(state.layers.get('transformer.h.0.attn.c_attn')!.weight.dataSync(), base) > 1e-3, 'merge changed the weight');
    L.unmergeLora(model);
    assert.ok(maxAbsDiff(state.layers.get('transformer.h.0.attn.c_attn')!.weight.dataSync(), base) < 1e-6);
    assert.ok(maxAbsDiff(logitsOf(model, input), unmerged) < 1e-5);
    // merge_and_unload: a plain model with the merged weights and the original parameter names.
    L.mergeAndUnload(model);
    assert.ok(model.namedParameters().every(([n]) => !n.includes('lora_')));
    assert.ok(maxAbsDiff(logitsOf(model, input), unmerged) < 1e-4);
    assert.equal(L.loraState(model), undefined);
    model.dispose();
  });

  it('target modules follow PEFT matching and a miss lists the layers', () => {
    assert.ok(L.matchesTarget('model.layers.0.self_attn.q_proj', ['q_proj']));
    assert.ok(!L.matchesTarget('model.layers.0.self_attn.q_proj', ['proj']));
    assert.ok(L.matchesTarget('model.layers.0.self_attn.q_proj', '.*\\.(q|v)_proj'));
    assert.ok(!L.matchesTarget('model.layers.0.self_attn.q_proj', 'q_proj'), 'a string is a full-match regex');
    const model = L.createModel(tinyConfig('bert'), 'masked-lm');
    assert.throws(() => L.applyLora(model, { r: 2, alpha: 2, targetModules: ['q_proj'] }), /match no Linear layer; the model has: .*attention\.self\.query/);
    model.dispose();
  });
});
