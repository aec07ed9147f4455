// Trains a two-layer MLP on a synthetic two-spirals problem with the engine alone (autograd, fused
// AdamW, scopes), printing loss and accuracy. `npm run example`.

import * as L from '../src/index.js';

const g = new L.Generator(42);
const n = 512;
const points: number[] = [];
const labels: number[] = [];
for (let i = 0; i < n; i++) {
  const cls = i % 2;
  const r = (i / n) * 4 + 0.2;
  const angle = r * 1.75 + cls * Math.PI;
  points.push(r * Math.cos(angle) + 0.1 * g.normal(), r * Math.sin(angle) + 0.1 * g.normal());
  labels.push(cls);
}
const x = L.tensor(points, [n, 2]).keep();
const y = L.tensor(labels, [n], { dtype: 'i32' }).keep();

const hidden = 64;
const params = [
  L.normal([hidden, 2], 0, 0.7, { generator: g }),
  L.zeros([hidden]),
  L.normal([hidden, hidden], 0, 1 / Math.sqrt(hidden), { generator: g }),
  L.zeros([hidden]),
  L.normal([2, hidden], 0, 1 / Math.sqrt(hidden), { generator: g }),
  L.zeros([2]),
].map((p) => p.keep().requireGrad());
const moments = params.map((p) => ({ m: L.zeros(p.shape).keep(), v: L.zeros(p.shape).keep() }));

const forward = () => {
  const h1 = L.gelu(L.linear(x, params[0]!, params[1]!));
  const h2 = L.gelu(L.linear(h1, params[2]!, params[3]!));
  return L.linear(h2, params[4]!, params[5]!);
};

console.log(`backend: ${L.getBackend().name}`);
const t0 = Date.now();
for (let step = 1; step <= 600; step++) {
  const loss = L.scope(() => L.crossEntropy(forward(), y));
  loss.backward();
  L.clipGradNorm(params.map((p) => p.grad!), 1.0);
  L.adamwStep(
    params.map((p, i) => ({ param: p, grad: p.grad!, m: moments[i]!.m, v: moments[i]!.v, weightDecay: p.rank > 1 ? 0.01 : 0 })),
    { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, step },
  );
  params.forEach((p) => p.zeroGrad());
  if (step % 100 === 0) {
    const accuracy = L.scope(() =>
      L.noGrad(() => {
        const logits = forward().dataSync();
        let correct = 0;
        for (let i = 0; i < n; i++) if (Number(logits[2 * i + 1]! > logits[2 * i]!) === labels[i]) correct++;
        return correct / n;
      }),
    );
    console.log(`step ${step}  loss ${loss.item().toFixed(4)}  accuracy ${(accuracy * 100).toFixed(1)}%`);
  }
  loss.dispose();
}
console.log(`600 steps in ${((Date.now() - t0) / 1000).toFixed(2)} s; live bytes ${L.getBackend().memory().liveBytes}`);
