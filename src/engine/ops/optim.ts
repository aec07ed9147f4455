// Optimiser kernels as ops: the fused multi-tensor AdamW update and the global gradient norm.
// They run outside autograd and update tensors in place (the Trainer builds on them).

import type { AdamWArgs } from '../../backends/backend.js';
import { Tensor, shapeString } from '../tensor.js';
import { checkDType, commonBackend, fail } from './check.js';

export interface AdamWState {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  weightDecay: number;
}

/** One AdamW step (torch.optim.AdamW semantics) over all the given tensors in one kernel call. */
export function adamwStep(states: readonly AdamWState[], args: AdamWArgs): void {
  if (states.length === 0) return;
  const backend = commonBackend('adamw', ...states.flatMap((s) => [s.param, s.grad, s.m, s.v]));
  for (const s of states) {
    for (const [name, t] of [['param', s.param], ['grad', s.grad], ['m', s.m], ['v', s.v]] as const) {
      checkDType('adamw', name, t, 'f32');
      if (t.size !== s.param.size) fail('adamw', `${name} ${shapeString(t.shape)} does not match param ${shapeString(s.param.shape)}`);
    }
  }
  if (!(args.step >= 1)) fail('adamw', `step must be >= 1, got ${args.step}`);
  backend.adamw(
    states.map((s) => s.param.storage),
    states.map((s) => s.grad.storage),
    states.map((s) => s.m.storage),
    states.map((s) => s.v.storage),
    states.map((s) => s.weightDecay),
    args,
  );
}

/** sqrt of the sum of squares of every element of every tensor (the global L2 norm). */
export function globalNorm(tensors: readonly Tensor[]): number {
  if (tensors.length === 0) return 0;
  const backend = commonBackend('globalNorm', ...tensors);
  return Math.sqrt(backend.sumSquares(tensors.map((t) => t.storage)));
}

/** Scales gradients in place so that their global norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number): number {
  const norm = globalNorm(grads);
  if (norm > maxNorm && norm > 0) {
    const factor = maxNorm / (norm + 1e-6);
    for (const g of grads) g.backend.unary('scale', g.storage, g.storage, factor);
  }
  return norm;
}
