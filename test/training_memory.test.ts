// A small MLP trained for 500 steps with the fused AdamW: the loss falls and the backend's live and
// cached bytes stay flat after the first steps (the caching allocator reuses each step's buffers).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import { backendConfigs } from './backends.js';

function trainMlp(steps: number): { losses: number[]; live: number[]; cached: number[] } {
  const g = new L.Generator(7);
  const inF = 8, hidden = 32, classes = 4, batch = 16;
  const params = [
    L.normal([hidden, inF], 0, 0.3, { generator: g }),
    L.zeros([hidden]),
    L.normal([classes, hidden], 0, 0.3, { generator: g }),
    L.zeros([classes]),
  ].map((p) => p.keep().requireGrad());
  const moments = params.map((p) => [L.zeros(p.shape).keep(), L.zeros(p.shape).keep()] as const);
  // A learnable rule: the class is the argmax of the first four features.
  const xs = L.normal([batch, inF], 0, 1, { generator: g }).keep();
  const host = xs.dataSync();
  const labels: number[] = [];
  for (let i = 0; i < batch; i++) {
    const row = [...host.slice(i * inF, i * inF + classes)];
    labels.push(row.indexOf(Math.max(...row)));
  }
  const ys = L.tensor(labels, [batch], { dtype: 'i32' }).keep();
  const losses: number[] = [];
  const live: number[] = [];
  const cached: number[] = [];
  const backend = L.getBackend();
  for (let step = 1; step <= steps; step++) {
    const loss = L.scope(() => {
      const h = L.gelu(L.linear(xs, params[0]!, params[1]!));
      const logits = L.linear(L.dropout(h, 0.1, { seed: step }), params[2]!, params[3]!);
      return L.crossEntropy(logits, ys);
    });
    loss.backward();
    losses.push(loss.item());
    loss.dispose();
    L.clipGradNorm(params.map((p) => p.grad!), 1.0);
    L.adamwStep(
      params.map((p, i) => ({ param: p, grad: p.grad!, m: moments[i]![0], v: moments[i]![1], weightDecay: p.rank > 1 ? 0.01 : 0 })),
      { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, step },
    );
    for (const p of params) p.zeroGrad();
    const mem = backend.memory();
    live.push(mem.liveBytes);
    cached.push(mem.cachedBytes);
  }
  for (const t of [...params, ...moments.flat(), xs, ys]) t.dispose();
  return { losses, live, cached };
}

for (const config of backendConfigs().filter((c) => c.name === 'reference' || c.name.endsWith('gemm=blas') || c.name === 'cpu avx512 gemm=own')) {
  describe(`training memory on ${config.name}`, () => {
    it('500 MLP steps: loss falls, live and cached bytes stay flat', () => {
      const backend = config.create();
      L.setBackend(backend);
      const start = backend.memory().liveBytes;
      const { losses, live, cached } = trainMlp(500);
      assert.ok(losses[499]! < losses[0]! * 0.2, `loss ${losses[0]} -> ${losses[499]}`);
      for (let i = 10; i < 500; i++) {
        assert.equal(live[i], live[9], `live bytes changed at step ${i + 1}: ${live[9]} -> ${live[i]}`);
        assert.equal(cached[i], cached[9], `cached bytes changed at step ${i + 1}: ${cached[9]} -> ${cached[i]}`);
      }
      assert.equal(backend.memory().liveBytes, start);
      assert.equal(backend.memory().liveCount, 0);
    });
  });
}
