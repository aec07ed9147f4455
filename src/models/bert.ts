// BERT (transformers' modeling_bert): word + position + token-type embeddings, post-norm encoder
// layers, pooler; the masked-LM head (tied decoder), sequence and token classification heads.

import { Generator } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import { zeros } from '../engine/create.js';
import { add, attention, embedding, linear, reshape, slice, tanh } from '../engine/ops/index.js';
import { Module } from '../nn/module.js';
import { Dropout, Embedding, LayerNorm, Linear, type LinearBase } from '../nn/layers.js';
import { withoutInit } from '../nn/init.js';
import { numLabels, type BertConfig } from './config.js';
import { BlockStack,
  PretrainedModel, activation, checkInputs, zeroRow, defaultPositions, sequenceLoss, tokenLoss, type InitRule, type ModelInputs,
  type ModelOptions, type ModelOutput, type Task,
} from './model.js';

class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(config: BertConfig) {
    super();
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(config.vocab_size, config.hidden_size));
    this.position_embeddings = this.registerModule('position_embeddings', new Embedding(config.max_position_embeddings, config.hidden_size));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(config.type_vocab_size, config.hidden_size));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hidden_size, config.layer_norm_eps));
    this.dropout = this.registerModule('dropout', new Dropout(config.hidden_dropout_prob));
  }
  forward(inputs: ModelInputs, t: number): Tensor {
    const ids = inputs.inputIds;
    const types = inputs.tokenTypeIds ?? zeros(ids.shape, { dtype: 'i32' });
    const positions = inputs.positionIds ?? defaultPositions(t, 0);
    // [B, T, C] + [B, T, C] + [T, C]
    const x = add(add(this.word_embeddings.forward(ids), this.token_type_embeddings.forward(types)), embedding(positions, this.position_embeddings.weight));
    return this.dropout.forward(this.LayerNorm.forward(x));
  }
}

class BertSelfAttention extends Module {
  query: LinearBase;
  key: LinearBase;
  value: LinearBase;
  constructor(private readonly config: BertConfig) {
    super();
    const c = config.hidden_size;
    this.query = this.registerModule('query', new Linear(c, c));
    this.key = this.registerModule('key', new Linear(c, c));
    this.value = this.registerModule('value', new Linear(c, c));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const h = this.config.num_attention_heads;
    // [B, T, H, D] is a free reshape of each projection and the output's layout is the merged [B, T, C]:
    // attention reads and writes heads in place, so neither direction copies.
    const heads = (p: LinearBase) => reshape(p.forward(x), [b, t, h, c / h]);
    const y = attention(heads(this.query), heads(this.key), heads(this.value), {
      layout: 'bthd',
      keyMask: mask,
      dropout: this.training ? this.config.attention_probs_dropout_prob : 0,
    });
    return reshape(y, [b, t, c]);
  }
}

/** dense -> dropout -> LayerNorm(+ residual): BertSelfOutput and BertOutput alike. */
class BertResidualOutput extends Module {
  dense: LinearBase;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(config: BertConfig, inFeatures: number) {
    super();
    this.dense = this.registerModule('dense', new Linear(inFeatures, config.hidden_size));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hidden_size, config.layer_norm_eps));
    this.dropout = this.registerModule('dropout', new Dropout(config.hidden_dropout_prob));
  }
  forward(h: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(add(this.dropout.forward(this.dense.forward(h)), residual));
  }
}

class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;
  constructor(config: BertConfig) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(config));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.hidden_size));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    return this.output.forward(this.self.forward(x, mask), x);
  }
}

class BertIntermediate extends Module {
  dense: LinearBase;
  constructor(private readonly config: BertConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hidden_size, config.intermediate_size));
  }
  forward(x: Tensor): Tensor {
    return activation(this.config.hidden_act, this.dense.forward(x));
  }
}

class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;
  constructor(config: BertConfig) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(config));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(config));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.intermediate_size));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const a = this.attention.forward(x, mask);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

class BertEncoder extends Module {
  readonly layer: BlockStack<BertLayer>;
  constructor(config: BertConfig) {
    super();
    this.layer = this.registerModule('layer', new BlockStack(Array.from({ length: config.num_hidden_layers }, () => new BertLayer(config))));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    return this.layer.run(x, (l, h) => l.forward(h, mask));
  }
}

/** tanh(dense(first token)): the [CLS] summary sequence classification reads. */
class BertPooler extends Module {
  dense: LinearBase;
  constructor(config: BertConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hidden_size, config.hidden_size));
  }
  forward(h: Tensor): Tensor {
    const [b, , c] = h.shape as [number, number, number];
    return tanh(this.dense.forward(reshape(slice(h, 1, 0, 1), [b, c])));
  }
}

/** The body (transformers' BertModel, `bert.` in head checkpoints). */
export class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;
  readonly pooler: BertPooler | null;
  constructor(
    readonly config: BertConfig,
    addPooling: boolean,
  ) {
    super();
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(config));
    this.encoder = this.registerModule('encoder', new BertEncoder(config));
    this.pooler = addPooling ? this.registerModule('pooler', new BertPooler(config)) : null;
  }
  /** Hidden states [B, T, C]. */
  forward(inputs: ModelInputs): Tensor {
    const [, t] = checkInputs('BertModel', inputs);
    if (inputs.cache) throw new Error('BertModel: BERT is an encoder; it takes no KV cache');
    if (t > this.config.max_position_embeddings) throw new Error(`BertModel: ${t} tokens exceed max_position_embeddings (${this.config.max_position_embeddings})`);
    return this.encoder.forward(this.embeddings.forward(inputs, t), inputs.attentionMask ?? null);
  }
}

abstract class BertPreTrainedModel extends PretrainedModel {
  readonly basePrefix = 'bert';
  override readonly ignoredKeys: readonly RegExp[] = [/embeddings\.position_ids$/];
  readonly bert: BertModel;

  constructor(
    readonly config: BertConfig,
    addPooling: boolean,
  ) {
    super();
    this.bert = withoutInit(() => this.registerModule('bert', new BertModel(config, addPooling)));
  }

  protected initRule(name: string): InitRule {
    if (name.endsWith('.bias')) return { constant: 0 };
    if (name.endsWith('LayerNorm.weight')) return { constant: 1 };
    return { normal: this.config.initializer_range };
  }

  protected finishInit(options: ModelOptions): void {
    if (!(options.init ?? true)) return;
    this.initWeights(new Generator(options.seed ?? 0));
    if (this.config.pad_token_id !== null) zeroRow(this.bert.embeddings.word_embeddings.weight, this.config.pad_token_id);
  }
}

class BertPredictionHeadTransform extends Module {
  dense: LinearBase;
  readonly LayerNorm: LayerNorm;
  constructor(private readonly config: BertConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hidden_size, config.hidden_size));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hidden_size, config.layer_norm_eps));
  }
  forward(h: Tensor): Tensor {
    return this.LayerNorm.forward(activation(this.config.hidden_act, this.dense.forward(h)));
  }
}

/** cls.predictions: transform, then the decoder (the word embeddings, tied) plus its own bias. */
class BertLMPredictionHead extends Module {
  readonly transform: BertPredictionHeadTransform;
  readonly bias: Tensor;
  readonly decoder: Linear | null;
  constructor(config: BertConfig) {
    super();
    this.transform = this.registerModule('transform', new BertPredictionHeadTransform(config));
    this.decoder = config.tie_word_embeddings ? null : this.registerModule('decoder', new Linear(config.hidden_size, config.vocab_size, { bias: false }));
    this.bias = this.registerParameter('bias', zeros([config.vocab_size]));
  }
  forward(h: Tensor, wordEmbeddings: Tensor): Tensor {
    return linear(this.transform.forward(h), this.decoder?.weight ?? wordEmbeddings, this.bias);
  }
}

class BertOnlyMLMHead extends Module {
  readonly predictions: BertLMPredictionHead;
  constructor(config: BertConfig) {
    super();
    this.predictions = this.registerModule('predictions', new BertLMPredictionHead(config));
  }
}

/** BertForMaskedLM: token logits over the vocabulary at every position (labels -100 where not masked). */
export class BertForMaskedLM extends BertPreTrainedModel {
  readonly task: Task = 'masked-lm';
  readonly architecture = 'BertForMaskedLM';
  // decoder.weight is the word embedding and decoder.bias is predictions.bias: saved once, as transformers.
  override readonly tiedKeys: readonly string[];
  override readonly ignoredKeys = [/embeddings\.position_ids$/, /^bert\.pooler\./];
  readonly headParameters: readonly string[];
  readonly cls: BertOnlyMLMHead;

  constructor(config: BertConfig, options: ModelOptions = {}) {
    super(config, false);
    this.cls = withoutInit(() => this.registerModule('cls', new BertOnlyMLMHead(config)));
    const tied = config.tie_word_embeddings;
    this.tiedKeys = tied ? ['cls.predictions.decoder.weight', 'cls.predictions.decoder.bias'] : ['cls.predictions.decoder.bias'];
    this.headParameters = ['cls.predictions.bias', ...(tied ? [] : ['cls.predictions.decoder.weight'])];
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const h = this.bert.forward(inputs);
    const logits = this.cls.predictions.forward(h, this.bert.embeddings.word_embeddings.weight);
    return { logits, loss: inputs.labels ? tokenLoss(logits, inputs.labels) : null };
  }
}

/** BertForSequenceClassification: pooler, dropout, `classifier`. */
export class BertForSequenceClassification extends BertPreTrainedModel {
  readonly task: Task = 'sequence-classification';
  readonly architecture = 'BertForSequenceClassification';
  readonly headParameters = ['classifier.weight', 'classifier.bias'];
  readonly dropout: Dropout;
  readonly classifier: Linear;

  constructor(config: BertConfig, options: ModelOptions = {}) {
    super(config, true);
    this.dropout = this.registerModule('dropout', new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob));
    this.classifier = withoutInit(() => this.registerModule('classifier', new Linear(config.hidden_size, numLabels(config))));
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const pooled = this.bert.pooler!.forward(this.bert.forward(inputs));
    const logits = this.classifier.forward(this.dropout.forward(pooled));
    return { logits, loss: inputs.labels ? sequenceLoss(logits, inputs.labels, this.config) : null };
  }
}

/** BertForTokenClassification: dropout then `classifier` on every position. */
export class BertForTokenClassification extends BertPreTrainedModel {
  readonly task: Task = 'token-classification';
  readonly architecture = 'BertForTokenClassification';
  override readonly ignoredKeys = [/embeddings\.position_ids$/, /^bert\.pooler\./];
  readonly headParameters = ['classifier.weight', 'classifier.bias'];
  readonly dropout: Dropout;
  readonly classifier: Linear;

  constructor(config: BertConfig, options: ModelOptions = {}) {
    super(config, false);
    this.dropout = this.registerModule('dropout', new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob));
    this.classifier = withoutInit(() => this.registerModule('classifier', new Linear(config.hidden_size, numLabels(config))));
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const logits = this.classifier.forward(this.dropout.forward(this.bert.forward(inputs)));
    return { logits, loss: inputs.labels ? tokenLoss(logits, inputs.labels) : null };
  }
}

export type BertHead = BertForMaskedLM | BertForSequenceClassification | BertForTokenClassification;
