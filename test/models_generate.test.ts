// Generation: the KV cache gives the same logits and tokens as recomputing, left padding does not
// change a prompt's tokens, seeded sampling repeats, stop tokens, streaming, no leaked tensors.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import { ids, maxAbsDiff, tinyConfig } from './models_fixtures.js';

const families: [string, () => L.PretrainedModel][] = [
  ['gpt2', () => L.createModel(tinyConfig('gpt2'), 'causal-lm', { seed: 21 }).eval()],
  ['llama', () => L.createModel(tinyConfig('llama'), 'causal-lm', { seed: 22 }).eval()],
  ['qwen2 (biases, tied)', () => L.createModel(tinyConfig('llama', { model_type: 'qwen2', tie_word_embeddings: true, rope_theta: 1e6 }), 'causal-lm', { seed: 23 }).eval()],
  ['llama3 rope scaling', () => L.createModel(tinyConfig('llama', { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } }), 'causal-lm', { seed: 24 }).eval()],
];

const prompts = [[1, 7, 12, 30, 4], [1, 9], [1, 44, 3]];

for (const [name, make] of families) {
  describe(`generation: ${name}`, () => {
    it('cached decoding gives the logits of a full forward', () => {
      const model = make();
      const seq = [1, 17, 5, 33, 8, 21, 40];
      const full = L.noGrad(() => L.scope(() => model.forward({ inputIds: ids([seq]) }).logits.dataSync()));
      const cache = new L.KVCache();
      const vocab = full.length / seq.length;
      L.noGrad(() =>
        L.scope(() => {
          const first = model.forward({ inputIds: ids([seq.slice(0, 4)]), cache }).logits.dataSync();
          assert.ok(maxAbsDiff(first, full.subarray(0, 4 * vocab)) < 1e-5);
          for (let t = 4; t < seq.length; t++) {
            const step = model.forward({ inputIds: ids([[seq[t]!]]), cache }).logits.dataSync();
            assert.ok(maxAbsDiff(step, full.subarray(t * vocab, (t + 1) * vocab)) < 1e-5, `position ${t}`);
          }
        }),
      );
      assert.equal(cache.length, seq.length);
      cache.dispose();
      model.dispose();
    });

    it('greedy tokens with the KV cache equal those without; padding changes nothing', () => {
      const model = make();
      const live = L.liveTensorCount();
      const cached = L.generate(model, prompts, { maxNewTokens: 8, stopTokens: [] });
      const recomputed = L.generate(model, prompts, { maxNewTokens: 8, stopTokens: [], useCache: false });
      assert.deepEqual(cached.tokens, recomputed.tokens);
      for (let i = 0; i < prompts.length; i++) {
        assert.deepEqual(L.generate(model, [prompts[i]!], { maxNewTokens: 8, stopTokens: [] }).tokens[0], cached.tokens[i], `prompt ${i} alone`);
      }
      assert.deepEqual(cached.finishReasons, ['length', 'length', 'length']);
      assert.equal(L.liveTensorCount(), live, 'generation leaves no tensor behind');
      model.dispose();
    });
  });
}

describe('generation options', () => {
  it('seeded sampling repeats; top-k 1 is greedy; stop tokens end a sequence', () => {
    const model = families[0]![1]();
    const sample = (seed: number) => L.generate(model, [[1, 2, 3]], { doSample: true, temperature: 1.5, topK: 0, seed, maxNewTokens: 12, stopTokens: [] }).tokens[0];
    assert.deepEqual(sample(7), sample(7));
    assert.notDeepEqual(sample(7), sample(8));
    const greedy = L.generate(model, [[1, 2, 3]], { maxNewTokens: 6, stopTokens: [] }).tokens[0]!;
    assert.deepEqual(L.generate(model, [[1, 2, 3]], { doSample: true, topK: 1, seed: 3, maxNewTokens: 6, stopTokens: [] }).tokens[0], greedy);
    assert.deepEqual(L.generate(model, [[1, 2, 3]], { doSample: true, topP: 1e-6, seed: 3, maxNewTokens: 6, stopTokens: [] }).tokens[0], greedy);
    const stop = greedy[2]!;
    const stopped = L.generate(model, [[1, 2, 3]], { maxNewTokens: 6, stopTokens: [stop] });
    assert.deepEqual(stopped.tokens[0], greedy.slice(0, greedy.indexOf(stop) + 1));
    assert.deepEqual(stopped.finishReasons, ['stop']);
    model.dispose();
  });

  it('streams the same tokens as generate', async () => {
    const model = families[1]![1]();
    const options = { maxNewTokens: 7, doSample: true, seed: 5, stopTokens: [] };
    const streamed: number[] = [];
    for await (const token of L.streamGenerate(model, [1, 5, 9], options)) streamed.push(token);
    assert.deepEqual(streamed, L.generate(model, [[1, 5, 9]], options).tokens[0]);
    model.dispose();
  });

  it('logits processors: repetition penalty, temperature, top-k, top-p', () => {
    const g = new L.Generator(1);
    const logits = Float32Array.from([2, 1.9, -1, 0.5]);
    assert.equal(L.chooseToken(logits, [], {}, g), 0);
    assert.equal(L.chooseToken(logits, [0], { repetitionPenalty: 1.2 }, g), 1, 'a seen token is divided by the penalty');
    assert.equal(L.chooseToken(Float32Array.from([-1, -1.1]), [0], { repetitionPenalty: 2 }, g), 1, 'negative scores are multiplied');
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 2000; i++) counts[L.chooseToken(logits, [], { doSample: true, topK: 2 }, g)]!++;
    assert.deepEqual([counts[2], counts[3]], [0, 0], 'top-k 2 keeps the two best');
    assert.ok(Math.abs(counts[0]! / 2000 - 1 / (1 + Math.exp(-0.1))) < 0.04);
    const nucleus = new Set(Array.from({ length: 500 }, () => L.chooseToken(logits, [], { doSample: true, topP: 0.5 }, g)));
    assert.deepEqual([...nucleus].sort(), [0, 1]);
  });

  it('KVCache writes in place, grows by doubling, copies from packed qkv, refuses gradients', () => {
    const [b, h, d] = [2, 3, 4];
    const g = new L.Generator(2);
    const rows = (t: number) => Float32Array.from({ length: b * t * h * d }, () => g.normal());
    const chunks = [rows(3), rows(1), rows(2), rows(1)];
    const cache = new L.KVCache();
    let layer: L.KVLayer | null = null;
    const capacities: number[] = [];
    L.noGrad(() =>
      L.scope(() => {
        for (const c of chunks) {
          const t = c.length / (b * h * d);
          // the same keys through append, the values through appendPacked's v part of [B, T, (1 + 2) * H*D]
          const qkv = new Float32Array(b * t * 3 * h * d);
          for (let r = 0; r < b * t; r++) qkv.set(c.subarray(r * h * d, (r + 1) * h * d), r * 3 * h * d + 2 * h * d);
          const k = L.tensor(c, [b, t, h, d]);
          layer = cache.append(0, k, k);
          layer = cache.appendPacked(1, L.tensor(qkv, [b, t, 3 * h * d]), h);
          capacities.push(layer.k.shape[1]!);
        }
      }),
    );
    assert.deepEqual(capacities, [3, 6, 6, 12], 'grown to fit, then by doubling');
    assert.equal(cache.length, 7);
    // each batch row holds its chunks in order
    const want = new Float32Array(b * 12 * h * d).fill(NaN);
    let pos = 0;
    for (const c of chunks) {
      const t = c.length / (b * h * d);
      for (let i = 0; i < b; i++) want.set(c.subarray(i * t * h * d, (i + 1) * t * h * d), (i * 12 + pos) * h * d);
      pos += t;
    }
    const filled = (x: Float32Array) => x.filter((_, j) => Math.floor(j / (h * d)) % 12 < 7);
    assert.deepEqual(filled(layer!.v.dataSync() as Float32Array), filled(want));
    const k = L.tensor(rows(1), [b, 1, h, d], { requiresGrad: true });
    assert.throws(() => cache.append(0, k, k), /the cache is for inference; run decoding under noGrad/);
    assert.throws(() => L.noGrad(() => L.scope(() => cache.append(0, L.zeros([b, 1, h + 1, d]), L.zeros([b, 1, h + 1, d])))), /layer 0 holds \[2,12,3,4\] buffers/);
    cache.dispose();
    k.dispose();
  });

  it('explains what it cannot do', () => {
    const bert = L.createModel(tinyConfig('bert'), 'masked-lm');
    assert.throws(() => L.generate(bert, [[1, 2]]), /BertForMaskedLM is not a causal LM/);
    const gpt = families[0]![1]();
    assert.throws(() => L.generate(gpt, [[1, 2]], { maxNewTokens: 100 }), /exceed the model's 64 positions/);
    bert.dispose();
    gpt.dispose();
  });
});
