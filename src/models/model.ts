// What every model head shares: the forward inputs/outputs, the PretrainedModel base (task, HF
// class name, checkpoint key rules, init by name, save), the KV cache, and the heads' losses.

import { Generator } from '../engine/random.js';
import { Tensor, empty, shapeString } from '../engine/tensor.js';
import { isGradEnabled, scope } from '../engine/engine.js';
import { checkpoint } from '../engine/checkpoint.js';
import { tensor } from '../engine/create.js';
import {
  add, addScalar, crossEntropy, embedding, exp, log, mean, mul, neg, pow, relu, reshape, squeeze, sub,
  gelu, silu, tanh,
} from '../engine/ops/index.js';
import { Module, ModuleList } from '../nn/module.js';
import { initConstant, initNormal } from '../nn/init.js';
import type { ModelConfig, ProblemType } from './config.js';
import { numLabels } from './config.js';
import { savePretrained, type SaveOptions } from './checkpoint.js';

export type Task = 'causal-lm' | 'masked-lm' | 'sequence-classification' | 'token-classification';
export const TASKS: readonly Task[] = ['causal-lm', 'masked-lm', 'sequence-classification', 'token-classification'];

export interface ModelInputs {
  /** i32 [B, T]. */
  inputIds: Tensor;
  /** i32 [B, T] (with a cache: [B, cached + T]); 1 for real tokens, 0 for padding. */
  attentionMask?: Tensor | null;
  /** BERT segment ids, i32 [B, T]; zeros when absent. */
  tokenTypeIds?: Tensor | null;
  /** i32 [B, T] or [T]; defaults to cached .. cached + T - 1. */
  positionIds?: Tensor | null;
  /** transformers' labels: token ids (causal LM, shifted inside), -100 = no loss; class ids [B]; floats for regression. */
  labels?: Tensor | null;
  /** Decoder models: keys/values of earlier tokens, extended in place by this call. */
  cache?: KVCache | null;
  /** Logits of the last position only ([B, 1, V]), what generation needs. */
  lastTokenOnly?: boolean;
}

export interface ModelOutput {
  /** [B, T, V] for LM heads, [B, T, numLabels] for token classification, [B, numLabels] for sequences. */
  logits: Tensor;
  /** The head's loss when labels were given. */
  loss: Tensor | null;
}

/** How a parameter is initialised for a fresh model (transformers' _init_weights, decided by name). */
export type InitRule = { normal: number } | { constant: number };

export interface ModelOptions {
  /** Seed of the initialisation. */
  seed?: number;
  /** false: leave the parameters unwritten (a checkpoint is loaded over them). Default true. */
  init?: boolean;
}

export abstract class PretrainedModel extends Module {
  abstract readonly config: ModelConfig;
  abstract readonly task: Task;
  /** The transformers class, written to config.json "architectures". */
  abstract readonly architecture: string;
  /** Path of the body ('transformer', 'bert', 'model'); checkpoints of a bare body lack this prefix. */
  abstract readonly basePrefix: string;
  /** Checkpoint keys that alias one of our parameters (tied weights): skipped on load, never saved. */
  readonly tiedKeys: readonly string[] = [];
  /** Keys older transformers versions saved for derived state (masks, position ids): ignored on load. */
  readonly ignoredKeys: readonly RegExp[] = [];
  /** Parameters a head adds on top of a body (reported as newly initialised when a checkpoint lacks them). */
  abstract readonly headParameters: readonly string[];

  abstract forward(inputs: ModelInputs): ModelOutput;

  /** The initialisation rule of one parameter (by its dotted name). */
  protected abstract initRule(name: string, t: Tensor): InitRule;

  /**
   * Activation checkpointing per block (transformers' gradient_checkpointing_enable): in training,
   * each block keeps only its input and recomputes its activations in backward, one extra block
   * forward per step for activation memory of about one block instead of all of them.
   */
  setGradientCheckpointing(on = true): this {
    for (const [, m] of this.namedModules()) if (m instanceof BlockStack) m.gradientCheckpointing = on;
    return this;
  }

  get gradientCheckpointing(): boolean {
    return this.namedModules().some(([, m]) => m instanceof BlockStack && m.gradientCheckpointing);
  }

  /** Initialises the selected parameters (all by default) by the family's rules, seeded. */
  initWeights(generator: Generator = new Generator(0), select: (name: string) => boolean = () => true): void {
    for (const [name, t] of this.namedParameters()) {
      if (!select(name)) continue;
      const rule = this.initRule(name, t);
      if ('normal' in rule) initNormal(t, rule.normal, generator);
      else initConstant(t, rule.constant);
    }
  }

  /**
   * Writes a folder transformers' from_pretrained accepts: config.json (architectures, model_type,
   * torch_dtype float32, label maps) and model.safetensors ({"format":"pt"}), atomically.
   */
  save(dir: string, options: SaveOptions = {}): Promise<void> {
    return savePretrained(this, dir, options);
  }
}

/**
 * A body's list of transformer blocks (checkpoint name `h`, `layer` or `layers`), run one after the
 * other. Each block runs in its own memory scope, so its intermediates go as soon as it returns
 * (autograd keeps what it saved), or under activation checkpointing when that is on in training.
 */
export class BlockStack<M extends Module> extends ModuleList<M> {
  gradientCheckpointing = false;

  run(x: Tensor, forward: (block: M, x: Tensor) => Tensor): Tensor {
    for (const block of this.items) {
      const input = x;
      if (this.gradientCheckpointing && block.training) x = checkpoint((h) => forward(block, h), [input], block.parameters());
      else x = scope(() => forward(block, input));
    }
    return x;
  }
}

/** One layer's cache: key and value buffers [B, capacity, Hkv, D] whose first `length` positions are filled. */
export interface KVLayer {
  k: Tensor;
  v: Tensor;
  length: number;
}

export interface KVCacheOptions {
  /** Positions to reserve up front (e.g. prompt + new tokens), so decoding never grows the buffers. */
  capacity?: number;
}

/**
 * Keys and values of earlier tokens, per layer, for incremental decoding. Each layer keeps [B, capacity,
 * Hkv, D] buffers ('bthd', the layout the projections produce) and writes each step's keys and values
 * into place; attention reads the first `length` positions through strides (`kvLength` / `past`), so a
 * step copies only its own tokens (transformers' DynamicCache concatenates, copying the whole cache per
 * step). A full buffer is replaced by one twice as large, copied once. Inference only: the buffers are
 * written outside autograd, so appending keys that need a gradient is an error.
 */
export class KVCache {
  private readonly layers: (KVLayer | undefined)[] = [];
  private readonly reserve: number;

  constructor(options: KVCacheOptions = {}) {
    this.reserve = options.capacity ?? 0;
  }

  /** Number of cached positions. */
  get length(): number {
    return this.layers[0]?.length ?? 0;
  }

  /** Appends one layer's new keys and values [B, T, Hkv, D]; returns the layer's buffers and length. */
  append(layer: number, k: Tensor, v: Tensor): KVLayer {
    if (k.rank !== 4 || !k.shape.every((n, i) => n === v.shape[i])) {
      throw new Error(`KVCache: keys ${shapeString(k.shape)} and values ${shapeString(v.shape)} must both be [batch, T, kvHeads, headDim]`);
    }
    const [b, t, h, d] = k.shape as [number, number, number, number];
    return this.write(layer, [k, 0], [v, 0], h * d, [b, t, h, d]);
  }

  /** Appends the key and value heads of a packed projection qkv [B, T, (Hq + 2 Hkv) * D] (GPT-2's c_attn). */
  appendPacked(layer: number, qkv: Tensor, heads: number, kvHeads = heads): KVLayer {
    const [b, t, w] = qkv.shape as [number, number, number];
    const d = w / (heads + 2 * kvHeads);
    if (qkv.rank !== 3 || !Number.isInteger(d)) throw new Error(`KVCache: qkv ${shapeString(qkv.shape)} is not [batch, T, (${heads} + 2*${kvHeads}) * headDim]`);
    return this.write(layer, [qkv, heads * d], [qkv, (heads + kvHeads) * d], w, [b, t, kvHeads, d]);
  }

  /** Copies T tokens (each kvHeads*D contiguous values, `stride` apart, from an offset) behind the cached ones. */
  private write(layer: number, k: [Tensor, number], v: [Tensor, number], stride: number, [b, t, h, d]: number[]): KVLayer {
    if (isGradEnabled() && (k[0].requiresGrad || v[0].requiresGrad)) {
      throw new Error('KVCache: the cache is for inference; run decoding under noGrad()');
    }
    let l = this.layers[layer];
    if (l && (l.k.shape[0] !== b || l.k.shape[2] !== h || l.k.shape[3] !== d)) {
      throw new Error(`KVCache: layer ${layer} holds ${shapeString(l.k.shape)} buffers, cannot append [${b},${t},${h},${d}]`);
    }
    const row = h * d;
    const len = l?.length ?? 0;
    const cap = l?.k.shape[1] ?? 0;
    if (!l || len + t > cap) {
      const grown = Math.max(len + t, 2 * cap, this.reserve);
      const backend = k[0].backend;
      const next: KVLayer = { k: empty([b, grown, h, d], 'f32', backend).keep(), v: empty([b, grown, h, d], 'f32', backend).keep(), length: len };
      if (l) {
        for (const key of ['k', 'v'] as const) {
          backend.stridedCopy(l[key].storage, 0, [cap * row, 1], [b, len * row], next[key].storage, 0, [grown * row, 1]);
          l[key].dispose();
        }
      }
      this.layers[layer] = l = next;
    }
    const capacity = l.k.shape[1]!;
    for (const [dst, [src, offset]] of [[l.k, k], [l.v, v]] as const) {
      src.backend.stridedCopy(src.storage, offset, [t * stride, stride, 1], [b, t, row], dst.storage, len * row, [capacity * row, row, 1]);
    }
    l.length = len + t;
    return l;
  }

  dispose(): void {
    for (const l of this.layers) {
      l?.k.dispose();
      l?.v.dispose();
    }
    this.layers.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Zeroes one row of a [rows, cols] parameter in place. */
export function zeroRow(weight: Tensor, row: number): void {
  const cols = weight.shape[1]!;
  weight.backend.write(weight.storage, new Float32Array(cols), row * cols);
}

/** Checks the shape and dtype of the inputs every model takes; returns [B, T]. */
export function checkInputs(model: string, inputs: ModelInputs): [number, number] {
  const { inputIds, attentionMask } = inputs;
  if (inputIds.dtype !== 'i32' || inputIds.rank !== 2) {
    throw new Error(`${model}: inputIds must be i32 [batch, seq], got ${inputIds.dtype} ${shapeString(inputIds.shape)}`);
  }
  const [b, t] = inputIds.shape as [number, number];
  const past = inputs.cache?.length ?? 0;
  if (attentionMask && (attentionMask.dtype !== 'i32' || attentionMask.size !== b * (past + t))) {
    throw new Error(`${model}: attentionMask must be i32 [${b}, ${past + t}], got ${attentionMask.dtype} ${shapeString(attentionMask.shape)}`);
  }
  return [b, t];
}

/** Default positions cached..cached+T-1 as an i32 [T] tensor. */
export function defaultPositions(t: number, past: number): Tensor {
  return tensor(Int32Array.from({ length: t }, (_, i) => past + i), [t], { dtype: 'i32' });
}

/** Applies a transformers activation by its config name. */
export function activation(name: string, x: Tensor): Tensor {
  switch (name) {
    case 'gelu':
      return gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return gelu(x, 'tanh');
    case 'relu':
      return relu(x);
    case 'silu':
    case 'swish':
      return silu(x);
    case 'tanh':
      return tanh(x);
    default:
      throw new Error(`activation "${name}" is not supported`);
  }
}

/** Rows of x [B, T, C] at one position per sequence -> [B, C] (a differentiable gather). */
export function gatherPositions(x: Tensor, positions: readonly number[]): Tensor {
  const [b, t, c] = x.shape as [number, number, number];
  const idx = tensor(Int32Array.from(positions, (p, i) => i * t + p), [b], { dtype: 'i32' });
  // embedding() is a row gather whose backward scatters into the table: here the table is x.
  const out = embedding(idx, reshape(x, [b * t, c]));
  idx.dispose();
  return out;
}

/**
 * The position each sequence is pooled at for sequence classification (GPT-2, Llama): its last
 * token that is not padding, as transformers does; without a pad token only a batch of one works.
 */
export function lastTokenPositions(inputIds: Tensor, padTokenId: number | null, model: string): number[] {
  const [b, t] = inputIds.shape as [number, number];
  if (padTokenId === null) {
    if (b !== 1) throw new Error(`${model}: cannot handle batch sizes > 1 if no padding token is defined (set pad_token_id in the config)`);
    return [t - 1];
  }
  const ids = inputIds.dataSync();
  const out: number[] = [];
  for (let i = 0; i < b; i++) {
    let last = 0;
    for (let j = 0; j < t; j++) if (ids[i * t + j] !== padTokenId) last = j;
    out.push(last);
  }
  return out;
}

/** Causal LM loss: labels shifted left by one inside (position t predicts token t+1), -100 ignored. */
export function causalLmLoss(logits: Tensor, labels: Tensor): Tensor {
  if (labels.dtype !== 'i32' || labels.rank !== 2) throw new Error(`causal LM labels must be i32 [batch, seq], got ${labels.dtype} ${shapeString(labels.shape)}`);
  const [b, t] = labels.shape as [number, number];
  const host = labels.dataSync();
  // Shifting the labels (not the logits) avoids copying the [B, T, V] logits; the mean is the same.
  const shifted = new Int32Array(b * t).fill(-100);
  for (let i = 0; i < b; i++) for (let j = 0; j + 1 < t; j++) shifted[i * t + j] = host[i * t + j + 1]!;
  const target = tensor(shifted, [b, t], { dtype: 'i32' });
  const loss = crossEntropy(logits, target);
  target.dispose();
  return loss;
}

/** Token-level loss (masked LM, token classification): labels [B, T], -100 ignored. */
export function tokenLoss(logits: Tensor, labels: Tensor): Tensor {
  if (labels.dtype !== 'i32') throw new Error(`token labels must be i32, got ${labels.dtype}`);
  return crossEntropy(logits, labels);
}

/** transformers' sequence-classification loss: regression (MSE), single-label (CE), multi-label (BCE). */
export function sequenceLoss(logits: Tensor, labels: Tensor, config: ModelConfig): Tensor {
  const n = numLabels(config);
  const problem: ProblemType = config.problem_type ?? (n === 1 ? 'regression' : labels.dtype === 'i32' ? 'single_label_classification' : 'multi_label_classification');
  if (problem === 'single_label_classification') {
    if (labels.dtype !== 'i32') throw new Error(`single-label classification needs i32 labels, got ${labels.dtype}`);
    return crossEntropy(logits, reshape(labels, [labels.size]));
  }
  const y = labels.dtype === 'f32' ? labels : tensor(Float32Array.from(labels.dataSync()), labels.shape);
  if (problem === 'regression') {
    const pred = n === 1 ? squeeze(logits, -1) : logits;
    return mean(pow(sub(pred, reshape(y, pred.shape)), 2));
  }
  // Binary cross-entropy with logits, the stable form: max(x,0) - x*y + log(1 + exp(-|x|)).
  const yy = reshape(y, logits.shape);
  const absX = add(relu(logits), relu(neg(logits)));
  return mean(add(sub(relu(logits), mul(logits, yy)), log(addScalar(exp(neg(absX)), 1))));
}
