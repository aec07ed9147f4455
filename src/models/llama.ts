// Llama (transformers' modeling_llama): RMSNorm, rotary positions (rope_theta, rope_scaling), SwiGLU,
// grouped-query attention; also Mistral, Qwen2 (q/k/v biases) and SmolLM, which differ only in config.

import { Generator } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import { add, attention, linear, mul, reshape, rope, ropeInvFreq, silu, slice } from '../engine/ops/index.js';
import { Module } from '../nn/module.js';
import { Dropout, Embedding, Linear, RMSNorm, type LinearBase } from '../nn/layers.js';
import { withoutInit } from '../nn/init.js';
import { llamaHeadDim, numLabels, type LlamaConfig } from './config.js';
import { BlockStack,
  KVCache, PretrainedModel, activation, zeroRow, causalLmLoss, checkInputs, gatherPositions, lastTokenPositions, sequenceLoss,
  tokenLoss, type InitRule, type ModelInputs, type ModelOptions, type ModelOutput, type Task,
} from './model.js';

/**
 * RoPE inverse frequencies with rope_scaling applied, as transformers' rope init functions compute
 * them. `seqLen` (cached + new tokens) matters only for 'dynamic' (NTK scaling beyond the trained length).
 */
export function llamaInvFreq(config: LlamaConfig, seqLen: number): Float32Array {
  const dim = llamaHeadDim(config);
  const s = config.rope_scaling;
  const kind = s?.rope_type ?? 'default';
  if (!s || kind === 'default') return ropeInvFreq(dim, config.rope_theta);
  if (kind === 'linear') return ropeInvFreq(dim, config.rope_theta).map((f) => f / s.factor);
  if (kind === 'dynamic') {
    const maxPos = config.max_position_embeddings;
    if (seqLen <= maxPos) return ropeInvFreq(dim, config.rope_theta);
    const base = config.rope_theta * ((s.factor * seqLen) / maxPos - (s.factor - 1)) ** (dim / (dim - 2));
    return ropeInvFreq(dim, base);
  }
  // llama3: long wavelengths divided by factor, short ones kept, a smooth blend between.
  const inv = ropeInvFreq(dim, config.rope_theta);
  const oldLen = s.original_max_position_embeddings!;
  const low = s.low_freq_factor!;
  const high = s.high_freq_factor!;
  const lowWavelen = oldLen / low;
  const highWavelen = oldLen / high;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (oldLen / wavelen - low) / (high - low);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

class LlamaAttention extends Module {
  q_proj: LinearBase;
  k_proj: LinearBase;
  v_proj: LinearBase;
  o_proj: LinearBase;
  private readonly headDim: number;

  constructor(
    private readonly config: LlamaConfig,
    private readonly layerIdx: number,
  ) {
    super();
    const c = config.hidden_size;
    this.headDim = llamaHeadDim(config);
    // Qwen2 has biases on q/k/v only; Llama's attention_bias puts them on all four.
    const qkvBias = config.model_type === 'qwen2' || config.attention_bias;
    const hq = config.num_attention_heads * this.headDim;
    const hkv = config.num_key_value_heads * this.headDim;
    this.q_proj = this.registerModule('q_proj', new Linear(c, hq, { bias: qkvBias }));
    this.k_proj = this.registerModule('k_proj', new Linear(c, hkv, { bias: qkvBias }));
    this.v_proj = this.registerModule('v_proj', new Linear(c, hkv, { bias: qkvBias }));
    this.o_proj = this.registerModule('o_proj', new Linear(hq, c, { bias: config.attention_bias }));
  }

  forward(x: Tensor, mask: Tensor | null, positions: readonly number[], invFreq: Float32Array, cache: KVCache | null): Tensor {
    const [b, t] = x.shape as [number, number, number];
    const d = this.headDim;
    // Heads stay where the projections put them ([B, T, H, D], a free reshape): rope and attention take
    // that layout, and the output reshapes to [B, T, Hq*D] for o_proj, so no head split/merge copies.
    const heads = (p: LinearBase, h: number) => reshape(p.forward(x), [b, t, h, d]);
    const q = rope(heads(this.q_proj, this.config.num_attention_heads), { positions, invFreq, layout: 'bthd' });
    let k = rope(heads(this.k_proj, this.config.num_key_value_heads), { positions, invFreq, layout: 'bthd' });
    let v = heads(this.v_proj, this.config.num_key_value_heads);
    let kvLength: number | undefined;
    if (cache) ({ k, v, length: kvLength } = cache.append(this.layerIdx, k, v));
    // Grouped-query attention: the op maps each query head to its key/value head itself.
    const y = attention(q, k, v, {
      layout: 'bthd',
      kvLength,
      causal: true,
      keyMask: mask,
      dropout: this.training ? this.config.attention_dropout : 0,
    });
    return this.o_proj.forward(reshape(y, [b, t, this.config.num_attention_heads * d]));
  }
}

/** SwiGLU: down(act(gate(x)) * up(x)). */
class LlamaMLP extends Module {
  gate_proj: LinearBase;
  up_proj: LinearBase;
  down_proj: LinearBase;
  constructor(private readonly config: LlamaConfig) {
    super();
    const { hidden_size: c, intermediate_size: f, mlp_bias: bias } = config;
    this.gate_proj = this.registerModule('gate_proj', new Linear(c, f, { bias }));
    this.up_proj = this.registerModule('up_proj', new Linear(c, f, { bias }));
    this.down_proj = this.registerModule('down_proj', new Linear(f, c, { bias }));
  }
  forward(x: Tensor): Tensor {
    const gate = this.config.hidden_act === 'silu' ? silu(this.gate_proj.forward(x)) : activation(this.config.hidden_act, this.gate_proj.forward(x));
    return this.down_proj.forward(mul(gate, this.up_proj.forward(x)));
  }
}

class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(config: LlamaConfig, layerIdx: number) {
    super();
    this.self_attn = this.registerModule('self_attn', new LlamaAttention(config, layerIdx));
    this.mlp = this.registerModule('mlp', new LlamaMLP(config));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(config.hidden_size, config.rms_norm_eps));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm(config.hidden_size, config.rms_norm_eps));
  }
  forward(x: Tensor, mask: Tensor | null, positions: readonly number[], invFreq: Float32Array, cache: KVCache | null): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), mask, positions, invFreq, cache));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

/** The body (transformers' LlamaModel, `model.` in head checkpoints): hidden states [B, T, C]. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: BlockStack<LlamaDecoderLayer>;
  readonly norm: RMSNorm;

  constructor(readonly config: LlamaConfig) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(config.vocab_size, config.hidden_size));
    this.layers = this.registerModule('layers', new BlockStack(Array.from({ length: config.num_hidden_layers }, (_, i) => new LlamaDecoderLayer(config, i))));
    this.norm = this.registerModule('norm', new RMSNorm(config.hidden_size, config.rms_norm_eps));
  }

  forward(inputs: ModelInputs): Tensor {
    const [, t] = checkInputs('LlamaModel', inputs);
    const cache = inputs.cache ?? null;
    const past = cache?.length ?? 0;
    const c = this.config;
    if (c.use_sliding_window && c.sliding_window !== null && past + t > c.sliding_window) {
      throw new Error(`${c.model_type}: ${past + t} tokens exceed sliding_window (${c.sliding_window}); sliding-window attention is not supported`);
    }
    // Positions go to the rope op as host numbers: read once here instead of once per layer.
    const pos = inputs.positionIds ? Array.from(inputs.positionIds.dataSync()) : Array.from({ length: t }, (_, i) => past + i);
    const invFreq = llamaInvFreq(c, pos.reduce((m, p) => Math.max(m, p + 1), past + t));
    let x = this.embed_tokens.forward(inputs.inputIds);
    x = this.layers.run(x, (layer, h) => layer.forward(h, inputs.attentionMask ?? null, pos, invFreq, cache));
    return this.norm.forward(x);
  }
}

abstract class LlamaPreTrainedModel extends PretrainedModel {
  readonly basePrefix = 'model';
  // Older checkpoints saved the RoPE inverse frequencies, which are derived from the config.
  override readonly ignoredKeys = [/rotary_emb\.inv_freq$/];
  readonly model: LlamaModel;
  protected readonly prefix: string;

  constructor(readonly config: LlamaConfig) {
    super();
    this.model = withoutInit(() => this.registerModule('model', new LlamaModel(config)));
    this.prefix = { llama: 'Llama', mistral: 'Mistral', qwen2: 'Qwen2' }[config.model_type];
  }

  protected initRule(name: string): InitRule {
    if (name.endsWith('.bias')) return { constant: 0 };
    if (/(layernorm|norm)\.weight$/.test(name)) return { constant: 1 };
    return { normal: this.config.initializer_range };
  }

  protected finishInit(options: ModelOptions): void {
    if (!(options.init ?? true)) return;
    this.initWeights(new Generator(options.seed ?? 0));
    // nn.Embedding(padding_idx=pad_token_id) starts with a zero row for the pad token.
    const pad = this.config.pad_token_id;
    if (pad !== null) zeroRow(this.model.embed_tokens.weight, pad);
  }
}

/** LlamaForCausalLM (MistralForCausalLM, Qwen2ForCausalLM): `lm_head`, tied to the embedding when the config says so. */
export class LlamaForCausalLM extends LlamaPreTrainedModel {
  readonly task: Task = 'causal-lm';
  readonly architecture: string;
  override readonly tiedKeys: readonly string[];
  readonly headParameters: readonly string[];
  readonly lm_head: Linear | null;

  constructor(config: LlamaConfig, options: ModelOptions = {}) {
    super(config);
    this.architecture = `${this.prefix}ForCausalLM`;
    const tied = config.tie_word_embeddings;
    this.lm_head = tied ? null : withoutInit(() => this.registerModule('lm_head', new Linear(config.hidden_size, config.vocab_size, { bias: false })));
    this.tiedKeys = tied ? ['lm_head.weight'] : [];
    this.headParameters = tied ? [] : ['lm_head.weight'];
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    let h = this.model.forward(inputs);
    if (inputs.lastTokenOnly) h = slice(h, 1, -1);
    const logits = linear(h, this.lm_head?.weight ?? this.model.embed_tokens.weight);
    return { logits, loss: inputs.labels ? causalLmLoss(logits, inputs.labels) : null };
  }
}

/** LlamaForSequenceClassification: `score` (no bias) on the last non-padding token. */
export class LlamaForSequenceClassification extends LlamaPreTrainedModel {
  readonly task: Task = 'sequence-classification';
  readonly architecture: string;
  readonly headParameters = ['score.weight'];
  readonly score: Linear;

  constructor(config: LlamaConfig, options: ModelOptions = {}) {
    super(config);
    this.architecture = `${this.prefix}ForSequenceClassification`;
    this.score = withoutInit(() => this.registerModule('score', new Linear(config.hidden_size, numLabels(config), { bias: false })));
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const h = this.model.forward(inputs);
    const pooled = gatherPositions(h, lastTokenPositions(inputs.inputIds, this.config.pad_token_id, this.architecture));
    const logits = this.score.forward(pooled);
    return { logits, loss: inputs.labels ? sequenceLoss(logits, inputs.labels, this.config) : null };
  }
}

/** LlamaForTokenClassification: dropout then `score` (with bias) on every position. */
export class LlamaForTokenClassification extends LlamaPreTrainedModel {
  readonly task: Task = 'token-classification';
  readonly architecture: string;
  readonly headParameters = ['score.weight', 'score.bias'];
  readonly dropout: Dropout;
  readonly score: Linear;

  constructor(config: LlamaConfig, options: ModelOptions = {}) {
    super(config);
    this.architecture = `${this.prefix}ForTokenClassification`;
    const extra = config.extra;
    const p = [extra.classifier_dropout, extra.hidden_dropout].find((v): v is number => typeof v === 'number') ?? 0.1;
    this.dropout = this.registerModule('dropout', new Dropout(p));
    this.score = withoutInit(() => this.registerModule('score', new Linear(config.hidden_size, numLabels(config))));
    this.finishInit(options);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const logits = this.score.forward(this.dropout.forward(this.model.forward(inputs)));
    return { logits, loss: inputs.labels ? tokenLoss(logits, inputs.labels) : null };
  }
}

export type LlamaHead = LlamaForCausalLM | LlamaForSequenceClassification | LlamaForTokenClassification;
