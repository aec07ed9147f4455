// The basic layers: Linear ([out, in] weight), Conv1D (GPT-2's [in, out] weight), Embedding,
// LayerNorm, RMSNorm, Dropout. Each forward is one fused engine op; attention lives in the models.

import { empty } from '../engine/tensor.js';
import type { Tensor } from '../engine/tensor.js';
import type { Generator } from '../engine/random.js';
import { dropout, embedding, layerNorm, linear, rmsNorm } from '../engine/ops/index.js';
import { Module } from './module.js';
import { initKaimingUniform, initNormal, initOnes, initZeros } from './init.js';

export interface LinearOptions {
  bias?: boolean;
  /** Draws the default initialisation from this generator (models re-initialise anyway). */
  generator?: Generator;
}

/**
 * A dense projection: the interface LoRA wraps. `fanInFanOut` is true when the weight is stored
 * [in, out] (GPT-2's Conv1D) instead of PyTorch's [out, in].
 */
export abstract class LinearBase extends Module {
  abstract readonly inFeatures: number;
  abstract readonly outFeatures: number;
  abstract readonly fanInFanOut: boolean;
  abstract readonly weight: Tensor;
  abstract readonly bias: Tensor | null;
  abstract forward(x: Tensor): Tensor;
}

/** y = x W^T + b with W [out, in] (torch.nn.Linear). */
export class Linear extends LinearBase {
  readonly fanInFanOut = false;
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures]));
    initKaimingUniform(this.weight, inFeatures, options.generator);
    this.bias = (options.bias ?? true) ? this.registerParameter('bias', empty([outFeatures])) : null;
    if (this.bias) initKaimingUniform(this.bias, inFeatures, options.generator);
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/**
 * GPT-2's Conv1D: y = x W + b with W stored [in, out], the layout of every GPT-2 checkpoint. The
 * stored layout is used directly (matmul without transposes) so weights load and save as they are.
 */
export class Conv1D extends LinearBase {
  readonly fanInFanOut = true;
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { generator?: Generator } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([inFeatures, outFeatures]));
    initNormal(this.weight, 0.02, options.generator);
    this.bias = this.registerParameter('bias', empty([outFeatures]));
    initZeros(this.bias);
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias, { weightLayout: 'in-out' });
  }
}

/** A lookup table [num, dim]; forward takes i32 ids of any shape. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: { generator?: Generator } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([numEmbeddings, embeddingDim]));
    initNormal(this.weight, 1, options.generator);
  }
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([dim]));
    initOnes(this.weight);
    this.bias = (options.bias ?? true) ? this.registerParameter('bias', empty([dim])) : null;
    if (this.bias) initZeros(this.bias);
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Llama's RMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([dim]));
    initOnes(this.weight);
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

/** Dropout with probability p in training mode, the identity in eval mode. */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p = ${p} must be in [0, 1)`);
  }
  forward(x: Tensor): Tensor {
    // The identity costs nothing when off; dropout() with training false would still record a node.
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, { training: true });
  }
}
