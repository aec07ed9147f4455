// Activation checkpointing (torch.utils.checkpoint): run a function without keeping its
// intermediates, and recompute them during backward. Trades one extra forward of the function for
// the memory of everything its backward would have saved; transformers apply it per block.

import { Node } from './autograd.js';
import { enableGrad, isGradEnabled, noGrad, scope } from './engine.js';
import { defaultGenerator } from './random.js';
import { Tensor } from './tensor.js';

/**
 * fn(...inputs), with the graph inside fn dropped after the forward pass and rebuilt in backward.
 * Gradients reach the inputs that require them and the leaves fn uses (pass them as `parameters` so
 * that the output requires a gradient even when no input does, e.g. LoRA over frozen embeddings).
 * fn must be deterministic given its inputs and the default generator's state: the generator is
 * rewound for the recomputation, so dropout masks repeat. Without grad mode it is fn in a scope.
 */
export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[], parameters: readonly Tensor[] = []): Tensor {
  const needsGrad = inputs.some((t) => t.requiresGrad) || parameters.some((p) => p.requiresGrad);
  if (!isGradEnabled() || !needsGrad) return scope(() => fn(...inputs));
  const rngBefore = defaultGenerator.getState();
  const inputNeedsGrad = inputs.map((t) => t.requiresGrad);
  const out = noGrad(() => scope(() => fn(...inputs)));
  // One node whose saved tensors are the inputs alone. Parameters are not its edges: the recomputed
  // graph accumulates into their .grad directly, as the uncheckpointed graph would.
  out.requiresGrad = true;
  out._node = new Node('checkpoint', inputs, inputs, (dy, saved) => recompute(fn, saved, inputNeedsGrad, dy, rngBefore), out.shape);
  return out;
}

function recompute(
  fn: (...inputs: Tensor[]) => Tensor,
  saved: readonly Tensor[],
  needsGrad: readonly boolean[],
  dy: Tensor,
  rngState: number,
): (Tensor | null)[] {
  const rngNow = defaultGenerator.getState();
  defaultGenerator.setState(rngState);
  try {
    return scope(() => {
      // Fresh leaves on the saved storage: their .grad collects the inputs' gradients.
      const leaves = saved.map((t, i) => {
        const leaf = new Tensor(t.buf().retain(), t.shape, t.dtype);
        leaf.requiresGrad = needsGrad[i]!;
        return leaf;
      });
      const y = enableGrad(() => fn(...leaves));
      if (y.requiresGrad) y.backward(dy);
      return leaves.map((leaf) => {
        const g = leaf.grad;
        leaf.grad = null;
        return g;
      });
    });
  } finally {
    defaultGenerator.setState(rngNow);
  }
}
