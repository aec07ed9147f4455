// The Trainer loop: accumulation equals a 4x batch; 20 + resume + 20 steps equal 40 straight (bit for
// bit, dropout on); logs, evaluation, best checkpoint, early stopping, memory, NaN loss.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as L from '../src/index.js';
import { Trainer, arrayData, perplexityEvaluator, type MetricRecord, type TrainerConfig } from '../src/train/index.js';
import { TinyLM, concatBatches, lmBatches, lmStep, type LmBatch } from './train_helpers.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'loom-train-'));

function sink(tty = false): Writable & { text: string; isTTY?: boolean } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string; isTTY?: boolean };
  w.text = '';
  if (tty) w.isTTY = true;
  return w;
}

describe('Trainer: gradient accumulation', () => {
  it('4 micro-batches of B give the same update as one batch of 4B (to 1e-6)', async () => {
    const micro = lmBatches(12, 2, 6, 3);
    const big = [0, 1, 2].map((k) => concatBatches(micro.slice(4 * k, 4 * k + 4)));
    const run = async (batches: LmBatch[], accum: number) => {
      const model = new TinyLM({ seed: 5 });
      const t = new Trainer({
        model, step: lmStep, trainData: arrayData(batches, { shuffle: false }),
        config: { maxSteps: 3, gradientAccumulationSteps: accum, optimizer: 'sgd', lr: 0.5, momentum: 0.9, schedule: 'constant', maxGradNorm: 0, progress: 'none' },
      });
      await t.train();
      const snap = model.snapshot();
      model.dispose();
      t.optimizer.dispose();
      return snap;
    };
    const a = await run(micro, 4);
    const b = await run(big, 1);
    for (const [name, va] of a) {
      const vb = b.get(name)!;
      for (let i = 0; i < va.length; i++) assert.ok(Math.abs(va[i]! - vb[i]!) < 1e-6, `${name}[${i}]: ${va[i]} vs ${vb[i]}`);
    }
  });
});

describe('Trainer: exact resume', () => {
  it('40 straight steps == 20 steps, stop, resume, 20 steps (bit-identical losses, dropout on)', async () => {
    const data = lmBatches(7, 3, 6, 11);
    const evalData = lmBatches(2, 3, 6, 12);
    const config = (runDir: string, resume = false): TrainerConfig => ({
      maxSteps: 40, gradientAccumulationSteps: 2, lr: 3e-2, weightDecay: 0.1, schedule: 'cosine', warmupSteps: 5,
      minLrRatio: 0.1, maxGradNorm: 0.5, evalEvery: 10, saveEvery: 10, saveTotalLimit: 2, logEvery: 5, runDir, resume, progress: 'none',
    });
    const run = async (runDir: string, stopAt: number | null, resume: boolean) => {
      const model = new TinyLM({ seed: resume ? 99 : 7, dropout: 0.2 }); // a resumed run must not depend on init
      const losses = new Map<number, number>();
      const t: Trainer<TinyLM, LmBatch> = new Trainer({
        model, step: lmStep, trainData: arrayData(data, { seed: 4 }), evalData: () => evalData, evaluator: perplexityEvaluator,
        config: config(runDir, resume),
        callbacks: { onStep: ({ step, loss }) => void (losses.set(step, loss), step === stopAt && t.stop()) },
      });
      const result = await t.train();
      const snap = model.snapshot();
      model.dispose();
      t.optimizer.dispose();
      return { losses, result, snap };
    };
    const straight = await run(tmp(), null, false);
    assert.equal(straight.losses.size, 40);
    assert.ok(straight.losses.get(40)! < straight.losses.get(1)!, 'loss falls');

    const dir = tmp();
    const first = await run(dir, 20, false);
    assert.equal(first.result.stoppedBy, 'stop');
    assert.equal(first.result.step, 20);
    const second = await run(dir, null, true);
    assert.equal(second.result.stoppedBy, 'maxSteps');
    for (let s = 1; s <= 40; s++) {
      const got = (s <= 20 ? first : second).losses.get(s);
      assert.equal(got, straight.losses.get(s), `step ${s}`);
    }
    assert.equal(second.losses.has(20), false);
    for (const [name, v] of straight.snap) assert.deepEqual(second.snap.get(name), v, name);

    // metrics.jsonl reads as one run: train lines every 5 steps and eval lines every 10, no duplicates
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRecord);
    const train = lines.filter((l) => l.split === 'train');
    const evals = lines.filter((l) => l.split === 'eval');
    assert.deepEqual(train.map((l) => l.step), [5, 10, 15, 20, 25, 30, 35, 40]);
    assert.deepEqual(evals.map((l) => l.step), [10, 20, 30, 40]);
    const straightLines = second.result.history;
    assert.equal(straightLines.length, lines.length);
    for (const l of lines) for (const k of ['loss', 'lr', 'epoch']) assert.equal(typeof l[k], 'number', `${k} in ${JSON.stringify(l)}`);
    assert.equal(typeof evals[0]!.perplexity, 'number');
    assert.ok(Math.abs((evals[0]!.perplexity as number) - Math.exp(evals[0]!.loss as number)) < 1e-9);
    // training_config.json, not config.json (the run folder receives the HF model)
    assert.equal(JSON.parse(readFileSync(join(dir, 'training_config.json'), 'utf8')).maxSteps, 40);
    assert.equal(existsSync(join(dir, 'config.json')), false);
    // last 2 kept, plus the best if older
    const kept = readdirSync(join(dir, 'checkpoints')).sort();
    const best = second.result.best!;
    assert.equal(best.metric, 'loss');
    const expected = new Set(['checkpoint-30', 'checkpoint-40', `checkpoint-${best.step}`]);
    assert.deepEqual(kept, [...expected].sort());
  });
});

describe('Trainer: evaluation, best checkpoint, early stopping', () => {
  it('stops after `patience` evaluations without improvement and keeps the best checkpoint', async () => {
    const scores = [0.5, 0.7, 0.7, 0.65, 0.9];
    let evals = 0;
    const dir = tmp();
    const model = new TinyLM({ seed: 2 });
    const out = sink();
    const seen: number[] = [];
    const t = new Trainer({
      model, step: lmStep, trainData: arrayData(lmBatches(4, 2, 4, 1)), evalData: () => lmBatches(1, 2, 4, 2),
      evaluator: () => ({ update() {}, compute: () => ({ score: scores[evals++]! }) }),
      config: { maxSteps: 50, lr: 1e-2, evalEvery: 2, saveEvery: 2, saveTotalLimit: 1, bestMetric: 'score', earlyStoppingPatience: 2, runDir: dir, progress: 'lines', logEvery: 2 },
      callbacks: { onEvaluate: (step) => void seen.push(step) },
      output: out,
    });
    const r = await t.train();
    // evals at 2 (0.5 best), 4 (0.7 best), 6 (0.7: not better), 8 (0.65: not better) -> stop at 8
    assert.equal(r.stoppedBy, 'earlyStopping');
    assert.equal(r.step, 8);
    assert.deepEqual(seen, [2, 4, 6, 8]);
    assert.deepEqual(r.best, { metric: 'score', value: 0.7, step: 4 });
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')).sort(), ['checkpoint-4', 'checkpoint-8']);
    assert.match(out.text, /step 2\/50 {2}epoch 0\.50 {2}loss \d\.\d{4} {2}lr .* tok\/s {2}eta /);
    assert.match(out.text, /eval @ step 4 {2}loss \d\.\d{4} {2}score 0\.7000/);
    model.dispose();
    t.optimizer.dispose();
  });

  it('leaves no tensors behind (steps, accumulation, clipping, evaluation)', async () => {
    const baseline = L.liveTensorCount();
    const model = new TinyLM({ dropout: 0.1 });
    const t = new Trainer({
      model, step: lmStep, trainData: arrayData(lmBatches(3, 2, 4, 1)), evalData: () => lmBatches(2, 2, 4, 2), evaluator: perplexityEvaluator,
      config: { maxSteps: 6, gradientAccumulationSteps: 2, maxGradNorm: 0.1, evalEvery: 3, progress: 'none' },
    });
    await t.train();
    await t.evaluate();
    model.dispose();
    t.optimizer.dispose();
    assert.equal(L.liveTensorCount(), baseline);
  });

  it('draws a progress bar on a TTY', async () => {
    const model = new TinyLM();
    const out = sink(true);
    const t = new Trainer({ model, step: lmStep, trainData: arrayData(lmBatches(2, 2, 4, 1)), config: { maxSteps: 3, progress: 'auto' }, output: out });
    await t.train();
    assert.match(out.text, /\r\x1b\[K\[#+\.*\] step 3\/3 {2}epoch 1\.50 {2}loss .* tok\/s {2}eta 0s/);
    model.dispose();
    t.optimizer.dispose();
  });

  it('frozen parameters are not trained', async () => {
    const model = new TinyLM();
    model.params.get('wte.weight')!.requireGrad(false);
    const before = model.snapshot();
    const t = new Trainer({ model, step: lmStep, trainData: arrayData(lmBatches(2, 2, 4, 1)), config: { maxSteps: 2, lr: 0.1, progress: 'none' } });
    await t.train();
    const after = model.snapshot();
    assert.deepEqual(after.get('wte.weight'), before.get('wte.weight'));
    assert.notDeepEqual(after.get('head.weight'), before.get('head.weight'));
    model.dispose();
    t.optimizer.dispose();
  });

  it('bf16 mixed precision: trains to about the fp32 losses, not the same ones, and restores fp32 after', async () => {
    const run = async (mixedPrecision: 'no' | 'bf16'): Promise<number[]> => {
      const model = new TinyLM({ dim: 32 });
      const losses: number[] = [];
      const t = new Trainer({
        model, step: lmStep, trainData: arrayData(lmBatches(8, 4, 16, 3)),
        config: { maxSteps: 40, lr: 0.05, progress: 'none', mixedPrecision },
        callbacks: { onStep: (s) => void losses.push(s.loss) },
      });
      await t.train();
      assert.equal(L.getMatmulPrecision(), 'fp32');
      model.dispose();
      t.optimizer.dispose();
      return losses;
    };
    const fp32 = await run('no');
    const bf16 = await run('bf16');
    assert.notDeepEqual(bf16, fp32, 'bf16 rounding changes the losses');
    assert.ok(fp32[39]! < 0.6 * fp32[0]!, `fp32 learns: ${fp32[0]} -> ${fp32[39]}`);
    for (let i = 0; i < 40; i++) assert.ok(Math.abs(bf16[i]! - fp32[i]!) <= 0.02 * fp32[i]!, `step ${i + 1}: bf16 ${bf16[i]} vs fp32 ${fp32[i]}`);
    assert.throws(() => new Trainer({ model: new TinyLM(), step: lmStep, trainData: arrayData(lmBatches(1, 1, 2, 1)), config: { maxSteps: 1, mixedPrecision: 'fp16' as 'bf16' } }), /mixedPrecision must be 'no' or 'bf16'/);
  });
});

describe('Trainer: non-finite loss', () => {
  it('stops at the step with the NaN, names it, and leaves the last good checkpoint', async () => {
    const dir = tmp();
    const model = new TinyLM();
    const t = new Trainer({
      model, trainData: arrayData(lmBatches(3, 2, 4, 1)),
      step: (m, b, ctx) => {
        const out = lmStep(m, b, ctx);
        return ctx.step === 7 && ctx.micro === 1 ? { ...out, loss: L.mul(out.loss, NaN) } : out;
      },
      config: { maxSteps: 20, gradientAccumulationSteps: 2, saveEvery: 5, runDir: dir, progress: 'none' },
    });
    await assert.rejects(t.train(), (e: Error) => {
      assert.equal(e.name, 'NonFiniteError');
      assert.match(e.message, /loss is NaN at step 7 \(micro-batch 1\); training stopped before updating the parameters, the last good checkpoint is .*checkpoint-5/);
      return true;
    });
    const snapshotAt6 = model.snapshot();
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')), ['checkpoint-5']);
    for (const v of snapshotAt6.values()) assert.ok(v.every(Number.isFinite));
    for (const [, p] of model.namedParameters()) assert.equal(p.grad, null, 'gradients cleared');
    model.dispose();
    t.optimizer.dispose();
  });
});

describe('Trainer: wall-clock budget (maxMinutes)', () => {
  it('stops after the step that spends the budget, evaluates, saves, says why, and resumes', async () => {
    const dir = tmp();
    const data = lmBatches(4, 2, 4, 1);
    // A fake clock: each reading is one simulated minute later, so the 3-minute budget read at the
    // start (0) is spent at the 3rd reading after it, i.e. after step 3.
    const fakeClock = (): (() => number) => {
      let t = 0;
      return () => (t += 60_000) - 60_000;
    };
    const run = async (resume: boolean) => {
      const model = new TinyLM({ seed: 3 });
      const evals: number[] = [];
      const t = new Trainer({
        model, step: lmStep, trainData: arrayData(data), evalData: () => lmBatches(1, 2, 4, 2), evaluator: perplexityEvaluator,
        config: { maxSteps: 50, lr: 1e-2, maxMinutes: 3, runDir: dir, resume, progress: 'none', logEvery: 1 },
        callbacks: { onEvaluate: (step) => void evals.push(step) },
        clock: fakeClock(),
      });
      const r = await t.train();
      model.dispose();
      t.optimizer.dispose();
      return { r, evals };
    };
    const first = await run(false);
    assert.equal(first.r.stoppedBy, 'maxMinutes');
    assert.equal(first.r.step, 3);
    assert.deepEqual(first.evals, [3], 'the stopping step is evaluated like the last one');
    assert.ok(existsSync(join(dir, 'checkpoints', 'checkpoint-3', 'loom_checkpoint.json')), 'a complete checkpoint');
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRecord);
    assert.deepEqual(lines.find((l) => l.split === 'stop'), { step: 3, split: 'stop', reason: 'maxMinutes', max_minutes: 3, epoch: 0.75 });
    assert.equal(lines.filter((l) => l.split === 'eval').length, 1);
    // A resume gets a fresh budget and continues from step 3.
    const second = await run(true);
    assert.equal(second.r.stoppedBy, 'maxMinutes');
    assert.equal(second.r.step, 6);
    const model = new TinyLM();
    assert.throws(() => new Trainer({ model, step: lmStep, trainData: arrayData(data), config: { maxSteps: 5, maxMinutes: 0 } }), /maxMinutes must be > 0, got 0/);
    model.dispose();
  });
});
