// Finite-difference gradient checks for every differentiable op, on every backend configuration:
// the analytic directional derivative sum(grad * v) must match (L(x + eps v) - L(x - eps v)) / 2eps.

import { describe, it } from 'node:test';
import * as L from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { backendConfigs } from './backends.js';

interface Spec {
  shape: number[];
  /** Values: 'normal' (default), 'positive' (0.5..1.5), or explicit. */
  kind?: 'normal' | 'positive' | 'spread';
}

interface Check {
  name: string;
  inputs: Spec[];
  fn: (xs: Tensor[]) => Tensor;
  eps?: number;
  tol?: number;
}

const ids = (values: number[], shape: number[]) => L.tensor(values, shape, { dtype: 'i32' });

const CHECKS: Check[] = [
  { name: 'add broadcast', inputs: [{ shape: [3, 4] }, { shape: [4] }], fn: ([a, b]) => L.add(a!, b!) },
  { name: 'sub broadcast', inputs: [{ shape: [2, 1, 3] }, { shape: [4, 1] }], fn: ([a, b]) => L.sub(a!, b!) },
  { name: 'mul broadcast', inputs: [{ shape: [2, 3] }, { shape: [2, 1] }], fn: ([a, b]) => L.mul(a!, b!) },
  { name: 'div', inputs: [{ shape: [3, 3] }, { shape: [3, 3], kind: 'positive' }], fn: ([a, b]) => L.div(a!, b!) },
  { name: 'scalar ops', inputs: [{ shape: [5] }], fn: ([a]) => L.div(L.sub(L.mul(L.add(a!, 2), 3), 1), 4) },
  { name: 'exp', inputs: [{ shape: [7] }], fn: ([a]) => L.exp(a!) },
  { name: 'log', inputs: [{ shape: [7], kind: 'positive' }], fn: ([a]) => L.log(a!) },
  { name: 'sqrt', inputs: [{ shape: [7], kind: 'positive' }], fn: ([a]) => L.sqrt(a!) },
  { name: 'tanh', inputs: [{ shape: [7] }], fn: ([a]) => L.tanh(a!) },
  { name: 'sigmoid', inputs: [{ shape: [7] }], fn: ([a]) => L.sigmoid(a!) },
  { name: 'relu', inputs: [{ shape: [9], kind: 'spread' }], fn: ([a]) => L.relu(a!) },
  { name: 'silu', inputs: [{ shape: [9] }], fn: ([a]) => L.silu(a!) },
  { name: 'gelu erf', inputs: [{ shape: [9] }], fn: ([a]) => L.gelu(a!) },
  { name: 'gelu tanh', inputs: [{ shape: [9] }], fn: ([a]) => L.gelu(a!, 'tanh') },
  { name: 'pow 3', inputs: [{ shape: [6] }], fn: ([a]) => L.pow(a!, 3) },
  { name: 'pow -0.5', inputs: [{ shape: [6], kind: 'positive' }], fn: ([a]) => L.pow(a!, -0.5) },
  { name: 'neg scale', inputs: [{ shape: [4] }], fn: ([a]) => L.scale(L.neg(a!), 1.5) },
  { name: 'sum axes', inputs: [{ shape: [2, 3, 4] }], fn: ([a]) => L.sum(a!, [0, 2]) },
  { name: 'mean axis keepDims', inputs: [{ shape: [2, 3, 4] }], fn: ([a]) => L.mean(a!, 1, { keepDims: true }) },
  { name: 'max axis', inputs: [{ shape: [3, 5], kind: 'spread' }], fn: ([a]) => L.max(a!, -1) },
  { name: 'max scattered axes', inputs: [{ shape: [2, 3, 4], kind: 'spread' }], fn: ([a]) => L.max(a!, [0, 2]) },
  { name: 'softmax', inputs: [{ shape: [3, 6] }], fn: ([a]) => L.softmax(a!) },
  { name: 'softmax axis 0', inputs: [{ shape: [4, 3] }], fn: ([a]) => L.softmax(a!, 0) },
  { name: 'logSoftmax', inputs: [{ shape: [3, 6] }], fn: ([a]) => L.logSoftmax(a!) },
  { name: 'matmul', inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], fn: ([a, b]) => L.matmul(a!, b!) },
  { name: 'matmul transA transB', inputs: [{ shape: [2, 4, 3] }, { shape: [2, 5, 4] }], fn: ([a, b]) => L.matmul(a!, b!, { transA: true, transB: true }) },
  { name: 'matmul shared 2-D weight transB', inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }], fn: ([a, b]) => L.matmul(a!, b!, { transB: true }) },
  { name: 'matmul batch broadcast', inputs: [{ shape: [3, 4] }, { shape: [2, 4, 2] }], fn: ([a, b]) => L.matmul(a!, b!) },
  { name: 'linear', inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }], fn: ([x, w, b]) => L.linear(x!, w!, b!) },
  { name: 'linear in-out weight (Conv1D)', inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }, { shape: [5] }], fn: ([x, w, b]) => L.linear(x!, w!, b!, { weightLayout: 'in-out' }) },
  { name: 'layerNorm', inputs: [{ shape: [3, 8] }, { shape: [8] }, { shape: [8] }], fn: ([x, w, b]) => L.layerNorm(x!, w!, b!) },
  { name: 'rmsNorm', inputs: [{ shape: [3, 8] }, { shape: [8] }], fn: ([x, w]) => L.rmsNorm(x!, w!) },
  { name: 'embedding', inputs: [{ shape: [5, 3] }], fn: ([t]) => L.embedding(ids([4, 0, 4, 2], [2, 2]), t!) },
  {
    name: 'crossEntropy smoothing ignore',
    inputs: [{ shape: [4, 6] }],
    fn: ([x]) => L.crossEntropy(x!, ids([1, -100, 5, 0], [4]), { labelSmoothing: 0.1 }),
  },
  { name: 'rope', inputs: [{ shape: [2, 2, 3, 8] }], fn: ([x]) => L.rope(x!, { offset: 5, rotaryDim: 6 }) },
  {
    name: 'attention causal GQA mask',
    inputs: [{ shape: [2, 4, 3, 8] }, { shape: [2, 2, 5, 8] }, { shape: [2, 2, 5, 8] }],
    fn: ([q, k, v]) => L.attention(q!, k!, v!, { causal: true, keyMask: ids([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [2, 5]) }),
  },
  {
    name: 'attention dropout',
    inputs: [{ shape: [1, 2, 4, 4] }, { shape: [1, 2, 4, 4] }, { shape: [1, 2, 4, 4] }],
    fn: ([q, k, v]) => L.attention(q!, k!, v!, { dropout: 0.3, seed: 7 }),
  },
  {
    name: "attention 'bthd' causal GQA mask",
    inputs: [{ shape: [2, 3, 4, 8] }, { shape: [2, 5, 2, 8] }, { shape: [2, 5, 2, 8] }],
    fn: ([q, k, v]) => L.attention(q!, k!, v!, { layout: 'bthd', causal: true, keyMask: ids([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [2, 5]) }),
  },
  {
    name: "attention 'bthd' kvLength (cache capacity) dropout",
    inputs: [{ shape: [1, 2, 2, 4] }, { shape: [1, 6, 1, 4] }, { shape: [1, 6, 1, 4] }],
    fn: ([q, k, v]) => L.attention(q!, k!, v!, { layout: 'bthd', kvLength: 4, causal: true, dropout: 0.3, seed: 11 }),
  },
  {
    name: 'attentionPacked causal GQA mask dropout',
    inputs: [{ shape: [2, 3, 32] }],
    fn: ([qkv]) => L.attentionPacked(qkv!, { heads: 4, kvHeads: 2, causal: true, keyMask: ids([1, 0, 1, 1, 1, 1], [2, 3]), dropout: 0.2, seed: 5 }),
  },
  {
    name: 'attentionPacked with past keys/values',
    inputs: [{ shape: [1, 2, 24] }, { shape: [1, 5, 2, 4] }, { shape: [1, 5, 2, 4] }],
    fn: ([qkv, k, v]) => L.attentionPacked(qkv!, { heads: 2, causal: true, past: { k: k!, v: v!, length: 4 } }),
  },
  { name: "rope 'bthd'", inputs: [{ shape: [2, 3, 2, 8] }], fn: ([x]) => L.rope(x!, { offset: 2, rotaryDim: 6, layout: 'bthd' }) },
  { name: 'dropout', inputs: [{ shape: [20] }], fn: ([x]) => L.dropout(x!, 0.25, { seed: 3 }) },
  { name: 'reshape permute', inputs: [{ shape: [2, 3, 4] }], fn: ([x]) => L.permute(L.reshape(x!, [4, 3, 2]), [2, 0, 1]) },
  { name: 'slice concat', inputs: [{ shape: [3, 4] }, { shape: [2, 4] }], fn: ([a, b]) => L.concat([L.slice(a!, 0, 1), b!, a!], 0) },
  { name: 'broadcastTo transpose', inputs: [{ shape: [3, 1] }], fn: ([a]) => L.transpose(L.broadcastTo(a!, [2, 3, 4]), 0, 2) },
];

function makeValues(spec: Spec, g: L.Generator): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (spec.kind === 'positive') out[i] = 0.5 + g.uniform();
    else if (spec.kind === 'spread') out[i] = (i * 7919) % n / n * 4 - 2 + 0.05; // distinct, away from 0 and ties
    else out[i] = g.normal();
  }
  return out;
}

function check(c: Check): void {
  const g = new L.Generator(1234);
  const values = c.inputs.map((s) => makeValues(s, g));
  const eps = c.eps ?? 1e-2;
  L.scope(() => {
    const xs = values.map((v, i) => L.tensor(v, c.inputs[i]!.shape, { requiresGrad: true }));
    const out = c.fn(xs);
    const w = L.tensor(makeValues({ shape: [...out.shape] }, g), out.shape);
    L.sum(L.mul(out, w)).backward();
    const loss = (vals: Float32Array[]) =>
      L.scope(() => L.noGrad(() => L.sum(L.mul(c.fn(vals.map((v, i) => L.tensor(v, c.inputs[i]!.shape))), w)).item()));
    xs.forEach((x, i) => {
      const dir = makeValues({ shape: c.inputs[i]!.shape }, g);
      const grad = x.grad!.dataSync();
      let analytic = 0;
      for (let j = 0; j < dir.length; j++) analytic += grad[j]! * dir[j]!;
      const shifted = (sign: number) =>
        values.map((v, k) => (k === i ? v.map((val, j) => val + sign * eps * dir[j]!) : v));
      const numeric = (loss(shifted(1)) - loss(shifted(-1))) / (2 * eps);
      const tol = (c.tol ?? 2e-2) * Math.max(1, Math.abs(numeric));
      if (!(Math.abs(analytic - numeric) <= tol)) {
        throw new Error(`input ${i}: analytic ${analytic}, finite difference ${numeric}`);
      }
    });
  });
}

for (const config of backendConfigs().filter((c) => !c.name.includes('gemm=own') || c.name.includes('avx512'))) {
  describe(`finite differences on ${config.name}`, () => {
    const backend = config.create();
    for (const c of CHECKS) {
      it(c.name, () => {
        L.setBackend(backend);
        check(c);
      });
    }
  });
}
