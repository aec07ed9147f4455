// Bad input: shape and dtype mismatches name the op and both shapes; out-of-range ids and labels
// are refused before any kernel reads memory, on every backend.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import { backendConfigs } from './backends.js';

for (const config of backendConfigs().filter((c) => c.name === 'reference' || c.name.endsWith('avx512 gemm=blas'))) {
  describe(`bad input on ${config.name}`, () => {
    const backend = config.create();
    const ids = (v: number[]) => L.tensor(v, [v.length], { dtype: 'i32' });

    it('names the op and the shapes', () => {
      L.setBackend(backend);
      L.scope(() => {
        assert.throws(() => L.add(L.zeros([2, 3]), L.zeros([4, 3])), /add: shapes \[2,3\] and \[4,3\] cannot broadcast/);
        assert.throws(() => L.matmul(L.zeros([2, 3]), L.zeros([4, 5])), /matmul: inner sizes differ: a \[2,3\] has 3, b \[4,5\] has 4/);
        assert.throws(() => L.linear(L.zeros([2, 3]), L.zeros([4, 5])), /linear: x \[2,3\] does not end in 5/);
        assert.throws(() => L.reshape(L.zeros([2, 3]), [4, 2]), /reshape: cannot reshape \[2,3\]/);
        assert.throws(() => L.layerNorm(L.zeros([2, 3]), L.zeros([4]), null), /layerNorm: weight \[4\] does not match last axis 3/);
        assert.throws(() => L.exp(ids([1])), /exp: x must be f32, got i32/);
        assert.throws(() => L.embedding(L.zeros([2]), L.zeros([3, 2])), /embedding: ids must be i32, got f32/);
        assert.throws(() => L.crossEntropy(L.zeros([2, 3]), ids([0, 1, 2])), /crossEntropy: targets \[3\] do not match logits \[2,3\]/);
        assert.throws(() => L.attention(L.zeros([1, 3, 2, 4]), L.zeros([1, 2, 2, 4]), L.zeros([1, 2, 2, 4])), /not a multiple/);
        assert.throws(() => L.sum(L.zeros([2]), 3), /sum: axis 3 is out of range for rank 1/);
        assert.throws(() => L.permute(L.zeros([2, 3]), [0, 0]), /repeats an axis/);
        assert.throws(() => L.concat([L.zeros([2, 3]), L.zeros([2, 4])], 0), /differ outside axis 0/);
      });
    });

    it('refuses out-of-range embedding ids and labels', () => {
      L.setBackend(backend);
      L.scope(() => {
        const table = L.zeros([5, 2]);
        assert.throws(() => L.embedding(ids([0, 5]), table), /id 5.*row 1|row 1.*5/i);
        assert.throws(() => L.embedding(ids([-1]), table), /-1/);
        assert.throws(() => L.crossEntropy(L.zeros([2, 3]), ids([0, 3])), /3/);
        assert.throws(() => L.crossEntropy(L.zeros([2, 3]), ids([-5, 0])), /-5/);
        // an ignored label is fine
        assert.ok(Number.isFinite(L.crossEntropy(L.zeros([2, 3]), ids([-100, 1])).item()));
      });
      assert.equal(backend.memory().liveCount, 0);
    });
  });
}
