// Every op's forward and gradients against PyTorch (test/fixtures/ops.json, from scripts/gen_fixtures.py),
// on every backend configuration: loss = sum(op(inputs) * upstream), gradients of each input.

import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import * as L from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { assertClose, backendConfigs } from './backends.js';

interface FixtureTensor {
  name: string;
  shape: number[];
  dtype?: 'f32' | 'i32';
  data: number[];
  requiresGrad?: boolean;
}
interface OpCase {
  name: string;
  op: string;
  params: Record<string, unknown>;
  inputs: FixtureTensor[];
  output: { shape: number[]; data: number[] };
  upstream: { shape: number[]; data: number[] };
  grads: Record<string, number[]>;
}
interface AdamWCase {
  name: string;
  op: 'adamw';
  params: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
  inputs: FixtureTensor[];
  steps: { grads: Record<string, number[]>; expected: Record<string, number[]> }[];
}

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/ops.json', import.meta.url), 'utf8')) as {
  cases: (OpCase | AdamWCase)[];
};

type Inputs = Record<string, Tensor>;
type P = Record<string, unknown>;

const axes = (p: P) => (p.axes as number[] | null) ?? null;
const OPS: Record<string, (x: Inputs, p: P) => Tensor> = {
  add: (x) => L.add(x.a!, x.b!),
  sub: (x) => L.sub(x.a!, x.b!),
  mul: (x) => L.mul(x.a!, x.b!),
  div: (x) => L.div(x.a!, x.b!),
  neg: (x) => L.neg(x.x!),
  exp: (x) => L.exp(x.x!),
  log: (x) => L.log(x.x!),
  sqrt: (x) => L.sqrt(x.x!),
  tanh: (x) => L.tanh(x.x!),
  sigmoid: (x) => L.sigmoid(x.x!),
  relu: (x) => L.relu(x.x!),
  silu: (x) => L.silu(x.x!),
  gelu: (x, p) => L.gelu(x.x!, p.approximate as 'none' | 'tanh'),
  pow: (x, p) => L.pow(x.x!, p.exponent as number),
  scale: (x, p) => L.scale(x.x!, p.s as number),
  sum: (x, p) => L.sum(x.x!, axes(p), { keepDims: p.keepDims as boolean }),
  mean: (x, p) => L.mean(x.x!, axes(p), { keepDims: p.keepDims as boolean }),
  max: (x, p) => L.max(x.x!, axes(p), { keepDims: p.keepDims as boolean }),
  softmax: (x, p) => L.softmax(x.x!, p.axis as number),
  logSoftmax: (x, p) => L.logSoftmax(x.x!, p.axis as number),
  matmul: (x, p) => L.matmul(x.a!, x.b!, { transA: p.transA as boolean, transB: p.transB as boolean }),
  linear: (x) => L.linear(x.x!, x.weight!, x.bias),
  layerNorm: (x, p) => L.layerNorm(x.x!, x.weight ?? null, x.bias ?? null, p.eps as number),
  rmsNorm: (x, p) => L.rmsNorm(x.x!, x.weight ?? null, p.eps as number),
  embedding: (x) => L.embedding(x.ids!, x.table!),
  crossEntropy: (x, p) =>
    L.crossEntropy(x.logits!, x.targets!, {
      ignoreIndex: p.ignoreIndex as number,
      labelSmoothing: p.labelSmoothing as number,
      reduction: p.reduction as 'mean' | 'sum',
    }),
  rope: (x, p) => L.rope(x.x!, { positions: p.positions as number[], theta: p.theta as number, rotaryDim: p.rotaryDim as number }),
  attention: (x, p) => {
    const [b, , s] = x.k!.shape as [number, number, number];
    const mask = p.keyMask ? L.tensor(p.keyMask as number[], [b, s], { dtype: 'i32' }) : null;
    return L.attention(x.q!, x.k!, x.v!, { causal: p.causal as boolean, keyMask: mask, scale: (p.scale as number | null) ?? undefined });
  },
};

/** Looser bounds where f32 evaluation order legitimately differs from a float64 reference. */
function tolerance(c: OpCase): { rtol: number; atol: number } {
  if (c.op === 'rope') return { rtol: 1e-4, atol: 1e-4 }; // torch's f32 pow for inv_freq differs by an ulp
  if (c.name.includes('large')) return { rtol: 1e-4, atol: 1e-5 };
  return { rtol: 2e-4, atol: 2e-5 };
}

function runCase(c: OpCase): void {
  L.scope(() => {
    const inputs: Inputs = {};
    for (const t of c.inputs) {
      inputs[t.name] = L.tensor(t.data, t.shape, { dtype: t.dtype ?? 'f32', requiresGrad: t.requiresGrad ?? false });
    }
    const fn = OPS[c.op];
    if (!fn) throw new Error(`no dispatch for op ${c.op}`);
    const out = fn(inputs, c.params);
    if (out.shape.join(',') !== c.output.shape.join(',')) {
      throw new Error(`output shape [${out.shape}] expected [${c.output.shape}]`);
    }
    const tol = tolerance(c);
    assertClose(out.dataSync(), c.output.data, 'output', tol.rtol, tol.atol);
    if (Object.keys(c.grads).length === 0) return;
    const loss = L.sum(L.mul(out, L.tensor(c.upstream.data, c.upstream.shape)));
    loss.backward();
    for (const [name, expected] of Object.entries(c.grads)) {
      const g = inputs[name]!.grad;
      if (!g) throw new Error(`no gradient reached input ${name}`);
      assertClose(g.dataSync(), expected, `grad ${name}`, tol.rtol, tol.atol * 2);
    }
  });
}

function runAdamW(c: AdamWCase): void {
  L.scope(() => {
    const states = c.inputs.map((t) => ({
      name: t.name,
      param: L.tensor(t.data, t.shape),
      m: L.zeros(t.shape),
      v: L.zeros(t.shape),
    }));
    c.steps.forEach((step, i) => {
      const grads = states.map((s) => L.tensor(step.grads[s.name]!, s.param.shape));
      L.adamwStep(
        states.map((s, j) => ({ param: s.param, grad: grads[j]!, m: s.m, v: s.v, weightDecay: c.params.weight_decay })),
        { lr: c.params.lr, beta1: c.params.betas[0], beta2: c.params.betas[1], eps: c.params.eps, step: i + 1 },
      );
      for (const s of states) assertClose(s.param.dataSync(), step.expected[s.name]!, `step ${i + 1} ${s.name}`, 1e-6, 1e-7);
    });
  });
}

for (const config of backendConfigs()) {
  describe(`ops vs PyTorch on ${config.name}`, () => {
    const backend = config.create();
    for (const c of fixtures.cases) {
      it(c.name, () => {
        L.setBackend(backend);
        if (c.op === 'adamw') runAdamW(c as AdamWCase);
        else runCase(c as OpCase);
        const mem = backend.memory();
        if (mem.liveCount !== 0) throw new Error(`${mem.liveCount} storages (${mem.liveBytes} bytes) still live after the case`);
      });
    }
  });
}
