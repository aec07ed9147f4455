// Tensors, creation, dtypes, autograd semantics and memory scopes (on the default backend).

import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';

describe('tensors', () => {
  beforeEach(() => L.setBackend(L.getBackend()));

  it('creates from nested arrays, flat data and constants', () => {
    L.scope(() => {
      const a = L.tensor([[1, 2, 3], [4, 5, 6]]);
      assert.deepEqual(a.shape, [2, 3]);
      assert.deepEqual(a.toArray(), [[1, 2, 3], [4, 5, 6]]);
      assert.deepEqual([...L.full([2, 2], 7).dataSync()], [7, 7, 7, 7]);
      assert.deepEqual([...L.zeros([3]).dataSync()], [0, 0, 0]);
      assert.deepEqual([...L.ones([1, 2]).dataSync()], [1, 1]);
      const r = L.arange(2, 11, 3);
      assert.equal(r.dtype, 'i32');
      assert.deepEqual([...r.dataSync()], [2, 5, 8]);
      assert.deepEqual([...L.arange(0, 1, 0.25).dataSync()], [0, 0.25, 0.5, 0.75]);
      assert.equal(L.tensor(3.5).item(), 3.5);
      assert.equal(L.tensor([1, 2]).toString(), 'Tensor([2], f32)');
      assert.throws(() => L.tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2,2\]/);
      assert.throws(() => L.tensor([1, 2]).item(), /2 elements/);
      assert.throws(() => L.tensor([1.5], [1], { dtype: 'i32' }), /not a 32-bit integer/);
    });
  });

  it('draws reproducible random numbers from a seed', () => {
    L.scope(() => {
      const a = L.randn([100], { generator: new L.Generator(42) }).dataSync();
      const b = L.randn([100], { generator: new L.Generator(42) }).dataSync();
      const c = L.randn([100], { generator: new L.Generator(43) }).dataSync();
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
      const big = L.normal([20000], 1, 2, { generator: new L.Generator(1) }).dataSync() as Float32Array;
      const mean = big.reduce((s, v) => s + v, 0) / big.length;
      const sd = Math.sqrt(big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length);
      assert.ok(Math.abs(mean - 1) < 0.05 && Math.abs(sd - 2) < 0.05, `mean ${mean} sd ${sd}`);
      const u = L.uniform([20000], -1, 3, { generator: new L.Generator(2) }).dataSync();
      assert.ok(u.every((v) => v >= -1 && v < 3));
    });
  });

  it('converts to bf16 and back with round-to-nearest-even', () => {
    L.scope(() => {
      const values = [1, -2.5, 3.14159, 1 + 2 ** -8, 1 + 3 * 2 ** -9, 65504, 1e-3, NaN, Infinity];
      const x = L.tensor(values);
      const b = L.cast(x, 'bf16');
      assert.equal(b.dtype, 'bf16');
      const back = L.cast(b, 'f32').dataSync();
      const host = L.bf16ToF32(L.f32ToBf16(values));
      assert.deepEqual([...back], [...host]);
      assert.equal(back[3], 1); // halfway: ties to even (down)
      assert.equal(back[4], 1 + 2 ** -7); // above halfway rounds up
      assert.ok(Number.isNaN(back[7]));
      assert.equal(back[8], Infinity);
      assert.ok(Math.abs(back[2]! - 3.140625) < 1e-9);
      const i = L.cast(L.tensor([1.7, -2.7]), 'i32');
      assert.deepEqual([...i.dataSync()], [1, -2]);
    });
  });
});

describe('autograd', () => {
  it('accumulates gradients over uses and over backward calls', () => {
    L.scope(() => {
      const x = L.tensor([1, 2, 3], [3], { requiresGrad: true });
      const y = L.sum(L.add(L.mul(x, x), x)); // d/dx = 2x + 1
      y.backward();
      assert.deepEqual([...x.grad!.dataSync()], [3, 5, 7]);
      L.sum(L.scale(x, 2)).backward();
      assert.deepEqual([...x.grad!.dataSync()], [5, 7, 9]);
      x.zeroGrad();
      assert.equal(x.grad, null);
    });
  });

  it('stops at detach and in noGrad', () => {
    L.scope(() => {
      const x = L.tensor([2, 3], [2], { requiresGrad: true });
      const y = L.mul(x, x);
      const z = L.noGrad(() => L.mul(x, 3));
      assert.equal(z.requiresGrad, false);
      const d = y.detach();
      assert.equal(d.requiresGrad, false);
      L.sum(L.mul(y, d)).backward(); // d is a constant: dl/dx = d * 2x
      assert.deepEqual([...x.grad!.dataSync()], [16, 54]);
    });
  });

  it('handles diamonds, shared inputs and views', () => {
    L.scope(() => {
      const x = L.tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true });
      const a = L.reshape(x, [4]);
      const b = L.exp(a);
      // c = exp(a) * a + a + colsum broadcast back: every path must add up
      const colsum = L.sum(L.reshape(a, [2, 2]), 0); // [x0 + x2, x1 + x3]
      const c = L.add(L.add(L.mul(b, a), a), L.reshape(L.broadcastTo(colsum, [2, 2]), [4]));
      L.sum(c).backward();
      const xs = [1, 2, 3, 4];
      const got = [...x.grad!.dataSync()];
      xs.forEach((v, i) => assert.ok(Math.abs(got[i]! - (Math.exp(v) * (v + 1) + 1 + 2)) < 1e-3, `grad ${i}: ${got[i]}`));
    });
  });

  it('explains misuse', () => {
    L.scope(() => {
      const x = L.tensor([1, 2], [2], { requiresGrad: true });
      const y = L.mul(x, x);
      assert.throws(() => y.backward(), /shape \[2\]; pass a gradient/);
      const s = L.sum(y);
      s.backward(undefined, { retainGraph: true });
      s.backward();
      assert.deepEqual([...x.grad!.dataSync()], [4, 8]);
      assert.throws(() => s.backward(), /second time/);
      assert.throws(() => L.tensor([1]).backward(), /does not require grad/);
      assert.throws(() => L.tensor([1], [1], { dtype: 'i32' }).requireGrad(), /i32 tensors cannot require gradients/);
      const d = L.tensor([1]);
      d.dispose();
      assert.throws(() => d.dataSync(), /used after dispose/);
    });
  });
});

describe('memory', () => {
  it('scope frees everything but the result and kept tensors', () => {
    const backend = L.getBackend();
    const before = backend.memory();
    const liveBefore = L.liveTensorCount();
    let kept: L.Tensor | null = null;
    const result = L.scope(() => {
      const a = L.ones([64]);
      const b = L.add(a, a);
      kept = L.mul(b, 2).keep();
      const nested = L.scope(() => ({ inner: L.exp(b), junk: 1 }));
      return [nested.inner];
    });
    assert.equal(L.liveTensorCount(), liveBefore + 2);
    assert.equal(result[0]!.dataSync()[0], Math.fround(Math.exp(2)));
    result[0]!.dispose();
    kept!.dispose();
    assert.equal(L.liveTensorCount(), liveBefore);
    assert.equal(backend.memory().liveBytes, before.liveBytes);
  });

  it('frees the graph when the output is disposed without backward', () => {
    const backend = L.getBackend();
    const before = backend.memory().liveBytes;
    const x = L.randn([32, 32], { requiresGrad: true });
    const y = L.scope(() => L.sum(L.exp(L.matmul(x, x))));
    assert.ok(backend.memory().liveBytes > before);
    y.dispose();
    x.dispose();
    assert.equal(backend.memory().liveBytes, before);
  });

  it('scope disposes its tensors when fn throws', () => {
    const live = L.liveTensorCount();
    assert.throws(() => L.scope(() => {
      L.ones([10]);
      throw new Error('boom');
    }), /boom/);
    assert.equal(L.liveTensorCount(), live);
  });
});
