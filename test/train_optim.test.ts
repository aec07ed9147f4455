// AdamW (param groups, scheduled LR), SGD (momentum, dampening, nesterov), clipping and the LR
// schedules against PyTorch / transformers values from test/fixtures/train.json.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as L from '../src/index.js';
import { AdamW, SGD, clipGradientNorm, defaultParamGroups, gradientClipScale, lrFactor, type ScheduleName } from '../src/train/index.js';

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/train.json', import.meta.url), 'utf8'));

function close(actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a} vs ${e}`);
  }
}

function setGrad(p: L.Tensor, values: number[]): void {
  p.zeroGrad();
  // backward of sum(p * g) leaves exactly g in p.grad
  const g = L.tensor(values, p.shape);
  const loss = L.scope(() => L.sum(L.mul(p, g)));
  loss.backward();
  loss.dispose();
  g.dispose();
}

describe('LR schedules (transformers formulas)', () => {
  it('match constant/linear/cosine with warmup and the cosine min-LR variant at every step', () => {
    for (const c of fixtures.schedules) {
      c.factors.forEach((f: number, step: number) => {
        const got = lrFactor({ name: c.name as ScheduleName, warmupSteps: c.warmup, totalSteps: c.total, minLrRatio: c.minLrRatio }, step);
        assert.ok(Math.abs(got - f) < 1e-12, `${c.name} warmup ${c.warmup} total ${c.total} min ${c.minLrRatio} step ${step}: ${got} vs ${f}`);
      });
    }
  });
});

describe('AdamW', () => {
  it('matches torch.optim.AdamW with two param groups under LambdaLR(warmup+cosine)', () => {
    const c = fixtures.adamw;
    const w = L.tensor(c.init.w, c.shapes.w).keep().requireGrad();
    const b = L.tensor(c.init.b, c.shapes.b).keep().requireGrad();
    const opt = new AdamW(
      [
        { params: [['w', w]], weightDecay: c.groups[0].weightDecay },
        { params: [['b', b]], weightDecay: c.groups[1].weightDecay, lr: c.groups[1].lr },
      ],
      { lr: c.lr, betas: c.betas, eps: c.eps },
    );
    c.steps.forEach((s: { grads: { w: number[]; b: number[] }; lrs: number[]; params: { w: number[]; b: number[] } }, k: number) => {
      opt.setLrFactor(lrFactor({ name: 'cosine', warmupSteps: c.schedule.warmup, totalSteps: c.schedule.total }, k));
      close(opt.lrs(), s.lrs, 1e-12, `lr step ${k}`);
      setGrad(w, s.grads.w);
      setGrad(b, s.grads.b);
      opt.step();
      close(w.dataSync(), s.params.w, 2e-6, `w after step ${k + 1}`);
      close(b.dataSync(), s.params.b, 2e-6, `b after step ${k + 1}`);
    });
    opt.dispose();
    w.dispose();
    b.dispose();
  });

  it('state dict round trip continues identically; mismatched state is a clear error', () => {
    const make = () => [L.tensor([1, 2, 3, 4], [2, 2]).keep().requireGrad(), L.tensor([0.5, -0.5]).keep().requireGrad()] as const;
    const [w1, b1] = make();
    const [w2, b2] = make();
    const o1 = new AdamW(defaultParamGroups([['w', w1], ['b', b1]], { weightDecay: 0.1 }), { lr: 0.1 });
    const o2 = new AdamW(defaultParamGroups([['w', w2], ['b', b2]], { weightDecay: 0.1 }), { lr: 0.1 });
    const grads = [[0.1, -0.2, 0.3, 0.4], [1, -1]];
    for (let i = 0; i < 3; i++) {
      setGrad(w1, grads[0]!);
      setGrad(b1, grads[1]!);
      o1.step();
    }
    // copy params and state into the second optimiser, then step both once more
    L.noGrad(() => {
      w2.backend.write(w2.storage, w1.dataSync());
      b2.backend.write(b2.storage, b1.dataSync());
    });
    o2.loadStateDict(o1.stateDict());
    for (const [w, b, o] of [[w1, b1, o1], [w2, b2, o2]] as const) {
      setGrad(w, grads[0]!);
      setGrad(b, grads[1]!);
      o.step();
    }
    assert.deepEqual([...w2.dataSync()], [...w1.dataSync()]);
    assert.deepEqual([...b2.dataSync()], [...b1.dataSync()]);
    // the default groups put the 1-D bias in the no-decay group
    assert.deepEqual(o1.stateDict().groups.map((g) => [g.names, g.weightDecay]), [[['w'], 0.1], [['b'], 0]]);

    const other = o1.stateDict();
    other.groups[0]!.names = ['wrong'];
    assert.throws(() => o2.loadStateDict(other, 'ckpt/optimizer.safetensors'), /ckpt\/optimizer.safetensors: .*missing w.*unexpected wrong/);
    const badShape = o1.stateDict();
    badShape.tensors.set('w.exp_avg', { shape: [4], data: new Float32Array(4) });
    assert.throws(() => o2.loadStateDict(badShape), /w.exp_avg has shape \[4\], the parameter is \[2,2\]/);
    for (const t of [w1, b1, w2, b2]) t.dispose();
    o1.dispose();
    o2.dispose();
  });

  it('only trains parameters that require grad', () => {
    const frozen = L.tensor([1, 2]).keep();
    const trained = L.tensor([[1, 2]]).keep().requireGrad();
    const groups = defaultParamGroups([['frozen', frozen], ['trained', trained]], { weightDecay: 0 });
    assert.deepEqual(groups.flatMap((g) => g.params.map(([n]) => n)), ['trained']);
    frozen.dispose();
    trained.dispose();
  });
});

describe('SGD', () => {
  for (const c of fixtures.sgd) {
    it(`matches torch.optim.SGD ${c.name}`, () => {
      const w = L.tensor(c.init, c.shape).keep().requireGrad();
      const o = c.options;
      const opt = new SGD([{ params: [['w', w]] }], {
        lr: o.lr, momentum: o.momentum, dampening: o.dampening, weightDecay: o.weight_decay, nesterov: o.nesterov,
      });
      c.steps.forEach((s: { grad: number[]; param: number[] }, k: number) => {
        setGrad(w, s.grad);
        opt.step();
        close(w.dataSync(), s.param, 2e-6, `${c.name} step ${k + 1}`);
      });
      opt.dispose();
      w.dispose();
    });
  }
});

describe('clipGradientNorm', () => {
  for (const c of fixtures.clip) {
    it(`matches torch.nn.utils.clip_grad_norm_ (${c.name})`, () => {
      const ps = c.shapes.map((s: number[], i: number) => {
        const p = L.zeros(s).keep().requireGrad();
        setGrad(p, c.grads[i]);
        return p;
      });
      const total = clipGradientNorm(ps, c.maxNorm);
      assert.ok(Math.abs(total - c.totalNorm) < 1e-6 * c.totalNorm, `${total} vs ${c.totalNorm}`);
      ps.forEach((p: L.Tensor, i: number) => close(p.grad!.dataSync(), c.clipped[i], 1e-6, `${c.name} grad ${i}`));
      ps.forEach((p: L.Tensor) => p.dispose());
    });
  }
});

describe('gradientClipScale + step({ gradScale })', () => {
  // The Trainer folds the clip coefficient into the update; it must equal clip-then-step bit for bit.
  const make = (seed: number) => {
    const g = new L.Generator(seed);
    return [L.randn([7, 5], { generator: g }), L.randn([5], { generator: g })].map((t) => t.keep().requireGrad());
  };
  const grads = (seed: number) => {
    const g = new L.Generator(seed + 100);
    return [L.randn([7, 5], { generator: g }), L.randn([5], { generator: g })].map((t) => Array.from(t.dataSync(), (x) => 3 * x));
  };
  const optimisers = {
    AdamW: (ps: L.Tensor[]) => new AdamW(defaultParamGroups(ps.map((p, i) => [`p${i}`, p] as [string, L.Tensor]), { weightDecay: 0.1 }), { lr: 1e-2 }),
    SGD: (ps: L.Tensor[]) => new SGD(defaultParamGroups(ps.map((p, i) => [`p${i}`, p] as [string, L.Tensor]), { weightDecay: 0.1 }), { lr: 1e-2, momentum: 0.9 }),
  };
  for (const [name, make_opt] of Object.entries(optimisers)) {
    for (const maxNorm of [0.5, 1e9]) {
      it(`${name}, max norm ${maxNorm}: same parameters as clipGradientNorm then step()`, () => {
        const a = make(1), b = make(1);
        const oa = make_opt(a), ob = make_opt(b);
        for (let step = 0; step < 3; step++) {
          const gs = grads(step);
          a.forEach((p, i) => setGrad(p, gs[i]!));
          b.forEach((p, i) => setGrad(p, gs[i]!));
          const na = clipGradientNorm(a, maxNorm);
          oa.step();
          const { norm, scale } = gradientClipScale(b, maxNorm);
          assert.equal(norm, na);
          assert.ok(maxNorm < 1 ? scale < 1 : scale === 1, `scale ${scale}`);
          ob.step({ gradScale: scale });
          // the gradients themselves are left as they were
          b.forEach((p, i) => assert.deepEqual(Array.from(p.grad!.dataSync()), Array.from(Float32Array.from(gs[i]!))));
        }
        a.forEach((p, i) => assert.deepEqual(Array.from(b[i]!.dataSync()), Array.from(p.dataSync()), `param ${i}`));
        oa.dispose();
        ob.dispose();
        [...a, ...b].forEach((p) => p.dispose());
      });
    }
  }
});
