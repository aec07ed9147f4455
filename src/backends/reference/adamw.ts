// Reference optimiser kernels: one AdamW step over a list of tensors (torch.optim.AdamW semantics,
// bias corrections in double) and the double-precision global sum of squares (for grad clipping).

import type { AdamWArgs, Storage } from '../backend.js';
import { f32 } from './common.js';

export function adamw(
  params: readonly Storage[],
  grads: readonly Storage[],
  m: readonly Storage[],
  v: readonly Storage[],
  weightDecay: readonly number[],
  args: AdamWArgs,
): void {
  const count = params.length;
  if (grads.length !== count || m.length !== count || v.length !== count || weightDecay.length !== count) {
    throw new Error(
      `adamw: list lengths differ (params ${count}, grads ${grads.length}, m ${m.length}, v ${v.length}, ` +
        `weightDecay ${weightDecay.length})`,
    );
  }
  const { lr, beta1, beta2, eps, step } = args;
  const gradScale = args.gradScale ?? 1;
  if (!Number.isInteger(step) || step < 1) throw new Error(`adamw: step must be an integer >= 1, got ${step}`);
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
  const stepSize = lr / bc1;
  for (let i = 0; i < count; i++) {
    const n = params[i]!.numel;
    for (const [s, name] of [[grads[i]!, 'grad'], [m[i]!, 'm'], [v[i]!, 'v']] as const) {
      if (s.numel !== n) throw new Error(`adamw: tensor ${i}: ${name} has ${s.numel} elements, param has ${n}`);
    }
    const ps = f32(params[i]!, n, `adamw param ${i}`);
    const gs = f32(grads[i]!, n, `adamw grad ${i}`);
    const ms = f32(m[i]!, n, `adamw m ${i}`);
    const vs = f32(v[i]!, n, `adamw v ${i}`);
    const decay = 1 - lr * weightDecay[i]!;
    for (let j = 0; j < n; j++) {
      // the scaled gradient rounds to f32 as an in-place g *= scale would
      const g = gradScale === 1 ? gs[j]! : Math.fround(gs[j]! * gradScale);
      // Same rounding points as PyTorch's f32 tensors: p, m and v are each stored before the update.
      const p = Math.fround(ps[j]! * decay);
      const mj = Math.fround(beta1 * ms[j]! + (1 - beta1) * g);
      const vj = Math.fround(beta2 * vs[j]! + (1 - beta2) * g * g);
      ms[j] = mj;
      vs[j] = vj;
      ps[j] = p - (stepSize * mj) / (Math.sqrt(vj) / bc2Sqrt + eps);
    }
  }
}

export function sumSquares(xs: readonly Storage[]): number {
  let total = 0;
  xs.forEach((s, i) => {
    const d = f32(s, s.numel, `sumSquares tensor ${i}`);
    for (let j = 0; j < d.length; j++) total += d[j]! * d[j]!;
  });
  return total;
}
