// GPT-2 (transformers' modeling_gpt2, nanoGPT's shape): learned positions, pre-norm blocks, Conv1D
// weights stored [in, out], gelu_new, tied LM head; the LM, sequence and token classification heads.

import { Generator } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import { add, attentionPacked, embedding, linear, slice } from '../engine/ops/index.js';
import { Module } from '../nn/module.js';
import { Conv1D, Dropout, Embedding, LayerNorm, Linear, type LinearBase } from '../nn/layers.js';
import { withoutInit } from '../nn/init.js';
import type { GPT2Config } from './config.js';
import { numLabels } from './config.js';
import { BlockStack,
  KVCache, PretrainedModel, activation, causalLmLoss, checkInputs, defaultPositions, gatherPositions, lastTokenPositions,
  sequenceLoss, tokenLoss, type InitRule, type ModelInputs, type ModelOptions, type ModelOutput, type Task,
} from './model.js';

class GPT2Attention extends Module {
  c_attn: LinearBase;
  c_proj: LinearBase;
  readonly resid_dropout: Dropout;
  private readonly scale: number;

  constructor(
    private readonly config: GPT2Config,
    private readonly layerIdx: number,
  ) {
    super();
    const c = config.n_embd;
    this.c_attn = this.registerModule('c_attn', new Conv1D(c, 3 * c));
    this.c_proj = this.registerModule('c_proj', new Conv1D(c, c));
    this.resid_dropout = this.registerModule('resid_dropout', new Dropout(config.resid_pdrop));
    const headDim = c / config.n_head;
    let scale = config.scale_attn_weights ? 1 / Math.sqrt(headDim) : 1;
    if (config.scale_attn_by_inverse_layer_idx) scale /= layerIdx + 1;
    this.scale = scale;
  }

  forward(x: Tensor, mask: Tensor | null, cache: KVCache | null): Tensor {
    // c_attn gives [B, T, 3C] = (q | k | v) per token, each C split into H heads: the packed attention
    // reads the heads in place and writes [B, T, C] with the heads merged, so nothing is copied, and
    // its backward writes d(qkv) as one buffer. A cache takes this step's keys/values straight from qkv.
    const qkv = this.c_attn.forward(x);
    const past = cache ? cache.appendPacked(this.layerIdx, qkv, this.config.n_head) : undefined;
    const y = attentionPacked(qkv, {
      heads: this.config.n_head,
      past,
      causal: true,
      keyMask: mask,
      scale: this.scale,
      dropout: this.training ? this.config.attn_pdrop : 0,
    });
    return this.resid_dropout.forward(this.c_proj.forward(y));
  }
}

class GPT2MLP extends Module {
  c_fc: LinearBase;
  c_proj: LinearBase;
  readonly dropout: Dropout;
  constructor(private readonly config: GPT2Config) {
    super();
    const inner = config.n_inner ?? 4 * config.n_embd;
    this.c_fc = this.registerModule('c_fc', new Conv1D(config.n_embd, inner));
    this.c_proj = this.registerModule('c_proj', new Conv1D(inner, config.n_embd));
    this.dropout = this.registerModule('dropout', new Dropout(config.resid_pdrop));
  }
  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.c_proj.forward(activation(this.config.activation_function, this.c_fc.forward(x))));
  }
}

class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;
  constructor(config: GPT2Config, layerIdx: number) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.attn = this.registerModule('attn', new GPT2Attention(config, layerIdx));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.mlp = this.registerModule('mlp', new GPT2MLP(config));
  }
  forward(x: Tensor, mask: Tensor | null, cache: KVCache | null): Tensor {
    const h = add(x, this.attn.forward(this.ln_1.forward(x), mask, cache));
    return add(h, this.mlp.forward(this.ln_2.forward(h)));
  }
}

/** The body (transformers' GPT2Model, `transformer.` in head checkpoints): hidden states [B, T, C]. */
export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: BlockStack<GPT2Block>;
  readonly ln_f: LayerNorm;

  constructor(readonly config: GPT2Config) {
    super();
    this.wte = this.registerModule('wte', new Embedding(config.vocab_size, config.n_embd));
    this.wpe = this.registerModule('wpe', new Embedding(config.n_positions, config.n_embd));
    this.drop = this.registerModule('drop', new Dropout(config.embd_pdrop));
    this.h = this.registerModule('h', new BlockStack(Array.from({ length: config.n_layer }, (_, i) => new GPT2Block(config, i))));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
  }

  forward(inputs: ModelInputs): Tensor {
    const [, t] = checkInputs('GPT2Model', inputs);
    const cache = inputs.cache ?? null;
    const past = cache?.length ?? 0;
    if (past + t > this.config.n_positions) {
      throw new Error(`GPT2Model: ${past + t} positions exceed n_positions (${this.config.n_positions})`);
    }
    const positions = inputs.positionIds ?? defaultPositions(t, past);
    // [B, T, C] + [T, C] (or [B, T, C] for per-sequence positions)
    let x = this.drop.forward(add(this.wte.forward(inputs.inputIds), embedding(positions, this.wpe.weight)));
    x = this.h.run(x, (block, h) => block.forward(h, inputs.attentionMask ?? null, cache));
    return this.ln_f.forward(x);
  }
}

/** The GPT-2 initialisation (transformers' _init_weights) by parameter name. */
function gpt2InitRule(config: GPT2Config, name: string): InitRule {
  if (name.endsWith('.bias')) return { constant: 0 };
  if (/(^|\.)ln_(1|2|f)\.weight$/.test(name)) return { constant: 1 };
  // Residual projections are scaled by 1/sqrt(2 * n_layer) (GPT-2 paper, "scaled c_proj init").
  if (name.endsWith('c_proj.weight')) return { normal: config.initializer_range / Math.sqrt(2 * config.n_layer) };
  return { normal: config.initializer_range };
}

abstract class GPT2PreTrainedModel extends PretrainedModel {
  readonly basePrefix = 'transformer';
  // Older checkpoints saved the causal-mask buffers attn.bias and attn.masked_bias.
  override readonly ignoredKeys = [/(^|\.)attn\.bias$/, /(^|\.)attn\.masked_bias$/];
  readonly transformer: GPT2Model;

  constructor(readonly config: GPT2Config) {
    super();
    this.transformer = withoutInit(() => this.registerModule('transformer', new GPT2Model(config)));
  }

  protected initRule(name: string): InitRule {
    return gpt2InitRule(this.config, name);
  }

  protected finishInit(options: ModelOptions): void {
    if (options.init ?? true) this.initWeights(new Generator(options.seed ?? 0));
  }
}

/** GPT2LMHeadModel: next-token logits; the head is the token embedding (tied) unless the config unties it. */
export class GPT2LMHeadModel extends GPT2PreTrainedModel {
  readonly task: Task = 'causal-lm';
  readonly architecture = 'GPT2LMHeadModel';
  override readonly tiedKeys: readonly string[];
  readonly headParameters: readonly string[];
  readonly lm_head: Linear | null;

  constructor(config: GPT2Config, options: ModelOptions = {}) {
    super(config);
    const tied = config.tie_word_embeddings;
    this.lm_head = tied ? null : withoutInit(() => this.registerModule('lm_head', new Linear(config.n_embd, config.vocab_size, { bias: false })));
    this.tiedKeys = tied ? ['lm_head.weight'] : [];
    this.headParameters = tied ? [] : ['lm_head.weight'];
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    let h = this.transformer.forward(inputs);
    if (inputs.lastTokenOnly) h = slice(h, 1, -1);
    const logits = linear(h, this.lm_head?.weight ?? this.transformer.wte.weight);
    return { logits, loss: inputs.labels ? causalLmLoss(logits, inputs.labels) : null };
  }
}

/** GPT2ForSequenceClassification: `score` (no bias) on the last non-padding token. */
export class GPT2ForSequenceClassification extends GPT2PreTrainedModel {
  readonly task: Task = 'sequence-classification';
  readonly architecture = 'GPT2ForSequenceClassification';
  readonly headParameters = ['score.weight'];
  readonly score: Linear;

  constructor(config: GPT2Config, options: ModelOptions = {}) {
    super(config);
    this.score = withoutInit(() => this.registerModule('score', new Linear(config.n_embd, numLabels(config), { bias: false })));
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const h = this.transformer.forward(inputs);
    const pooled = gatherPositions(h, lastTokenPositions(inputs.inputIds, this.config.pad_token_id, this.architecture));
    const logits = this.score.forward(pooled);
    return { logits, loss: inputs.labels ? sequenceLoss(logits, inputs.labels, this.config) : null };
  }
}

/** GPT2ForTokenClassification: dropout then `classifier` on every position. */
export class GPT2ForTokenClassification extends GPT2PreTrainedModel {
  readonly task: Task = 'token-classification';
  readonly architecture = 'GPT2ForTokenClassification';
  readonly headParameters = ['classifier.weight', 'classifier.bias'];
  readonly dropout: Dropout;
  readonly classifier: Linear;

  constructor(config: GPT2Config, options: ModelOptions = {}) {
    super(config);
    const extra = config.extra.hidden_dropout;
    const p = config.classifier_dropout ?? (typeof extra === 'number' ? extra : 0.1);
    this.dropout = this.registerModule('dropout', new Dropout(p));
    this.classifier = withoutInit(() => this.registerModule('classifier', new Linear(config.n_embd, numLabels(config))));
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const logits = this.classifier.forward(this.dropout.forward(this.transformer.forward(inputs)));
    return { logits, loss: inputs.labels ? tokenLoss(logits, inputs.labels) : null };
  }
}

export type GPT2Head = GPT2LMHeadModel | GPT2ForSequenceClassification | GPT2ForTokenClassification;
