// Activation checkpointing: the same loss and gradients as the plain graph (dropout masks replayed),
// for every family and for LoRA over a frozen base, with less live memory at the peak of a step.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import { tinyConfig } from './models_fixtures.js';

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  peakBytes: number;
}

function step(model: L.PretrainedModel, inputs: () => L.ModelInputs, seed: number): StepResult {
  const backend = L.getBackend();
  L.manualSeed(seed);
  model.zeroGrad();
  backend.resetPeakMemory();
  const loss = L.scope(() => model.forward(inputs()).loss!);
  loss.backward();
  const value = loss.item();
  loss.dispose();
  const peakBytes = backend.memory().peakLiveBytes;
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.trainableParameters()) grads.set(name, p.grad!.dataSync() as Float32Array);
  model.zeroGrad();
  return { loss: value, grads, peakBytes };
}

function assertSameGradients(a: StepResult, b: StepResult): void {
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`);
  assert.deepEqual([...a.grads.keys()], [...b.grads.keys()]);
  for (const [name, ga] of a.grads) {
    const gb = b.grads.get(name)!;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < ga.length; i++) {
      scale = Math.max(scale, Math.abs(ga[i]!));
      diff = Math.max(diff, Math.abs(ga[i]! - gb[i]!));
    }
    assert.ok(scale > 0, `${name}: gradient is zero`);
    assert.ok(diff <= 1e-5 * scale, `${name}: max diff ${diff} (scale ${scale})`);
  }
}

function randomIds(b: number, t: number, vocab: number, seed: number): Int32Array {
  const g = new L.Generator(seed);
  return Int32Array.from({ length: b * t }, () => 3 + (g.nextU32() % (vocab - 3)));
}

const cases: { family: L.Family; task: L.Task; dropout: Record<string, unknown> }[] = [
  { family: 'gpt2', task: 'causal-lm', dropout: { resid_pdrop: 0.1, attn_pdrop: 0.1, embd_pdrop: 0.1 } },
  { family: 'bert', task: 'masked-lm', dropout: { hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 } },
  { family: 'llama', task: 'causal-lm', dropout: { attention_dropout: 0.1 } },
];

describe('gradient checkpointing', () => {
  for (const { family, task, dropout } of cases) {
    it(`${family}: same loss and gradients with dropout, lower peak live memory`, () => {
      const config = tinyConfig(family, { ...dropout, n_layer: 4, num_hidden_layers: 4 });
      const model = L.createModel(config, task, { seed: 3 });
      model.train();
      const [b, t] = [4, 48];
      const idsHost = randomIds(b, t, 50, 11);
      const labelsHost = family === 'bert' ? idsHost.map((id, i) => (i % 7 === 0 ? id : -100)) : idsHost;
      const inputs = (): L.ModelInputs => ({
        inputIds: L.tensor(idsHost, [b, t], { dtype: 'i32' }),
        labels: L.tensor(labelsHost, [b, t], { dtype: 'i32' }),
      });
      const plain = step(model, inputs, 99);
      model.setGradientCheckpointing(true);
      assert.equal(model.gradientCheckpointing, true);
      const ckpt = step(model, inputs, 99);
      assertSameGradients(plain, ckpt);
      assert.ok(ckpt.peakBytes < 0.8 * plain.peakBytes, `peak ${ckpt.peakBytes} vs ${plain.peakBytes} bytes`);
      // A different seed gives other dropout masks, so equality above is not an accident.
      const other = step(model, inputs, 100);
      assert.notEqual(other.loss, ckpt.loss);
      // Evaluation ignores the flag: no graph, no recomputation.
      model.eval();
      const evalLoss = L.noGrad(() => L.scope(() => model.forward(inputs()).loss!.item()));
      assert.ok(Number.isFinite(evalLoss));
      model.dispose();
    });
  }

  it('LoRA over a frozen base: adapter gradients match although no block input needs a gradient', () => {
    const model = L.createModel(tinyConfig('gpt2', { n_layer: 3 }), 'causal-lm', { seed: 5 });
    L.applyLora(model, { r: 4, alpha: 8, dropout: 0.1, targetModules: ['c_attn'], seed: 1 });
    model.train();
    const idsHost = randomIds(2, 32, 50, 4);
    const inputs = (): L.ModelInputs => ({
      inputIds: L.tensor(idsHost, [2, 32], { dtype: 'i32' }),
      labels: L.tensor(idsHost, [2, 32], { dtype: 'i32' }),
    });
    // A fresh adapter has B = 0, which makes A's gradient zero: give B values.
    const g = new L.Generator(2);
    for (const [name, p] of model.trainableParameters()) {
      if (name.includes('lora_B')) L.writeInto(p, Float32Array.from({ length: p.size }, () => g.normal() * 0.1));
    }
    const plain = step(model, inputs, 7);
    model.setGradientCheckpointing(true);
    const ckpt = step(model, inputs, 7);
    assert.ok([...ckpt.grads.keys()].every((n) => n.includes('lora_')));
    assertSameGradients(plain, ckpt);
    model.dispose();
  });
});
