// Typed model configs parsed from (and written back to) Hugging Face config.json, with transformers'
// defaults, errors that name the field, and the size presets tiny/small/base of each family.

import { shortJson } from '../short_json.js';

/**
 * Field names are transformers' own (snake_case), so a config.json maps onto these types without a
 * renaming table and save() writes back exactly what transformers reads.
 */
interface CommonConfig {
  architectures?: string[];
  /** Class index (as a decimal string, as in config.json) to label name. */
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  problem_type?: ProblemType | null;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  tie_word_embeddings: boolean;
  initializer_range: number;
  /** Fields of the file that Loom does not use, written back unchanged by save(). */
  extra: Record<string, unknown>;
}

export type ProblemType = 'regression' | 'single_label_classification' | 'multi_label_classification';

export interface GPT2Config extends CommonConfig {
  model_type: 'gpt2';
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** MLP width; null means 4 * n_embd. */
  n_inner: number | null;
  activation_function: string;
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  layer_norm_epsilon: number;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  reorder_and_upcast_attn: boolean;
  classifier_dropout: number | null;
}

export interface BertConfig extends CommonConfig {
  model_type: 'bert';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  layer_norm_eps: number;
  position_embedding_type: 'absolute';
  classifier_dropout: number | null;
}

/** rope_scaling of config.json; `rope_type` (or the older `type`) picks the formula. */
export interface RopeScaling {
  rope_type: 'linear' | 'dynamic' | 'llama3' | 'default';
  factor: number;
  /** llama3 only. */
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/** Llama, and the architectures that differ from it only in config: Mistral, Qwen2 (q/k/v biases), SmolLM. */
export interface LlamaConfig extends CommonConfig {
  model_type: 'llama' | 'mistral' | 'qwen2';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** null means hidden_size / num_attention_heads. */
  head_dim: number | null;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  attention_bias: boolean;
  attention_dropout: number;
  mlp_bias: boolean;
  /** Mistral/Qwen2 sliding-window attention span (null: full attention). */
  sliding_window: number | null;
  use_sliding_window: boolean;
}

export type ModelConfig = GPT2Config | BertConfig | LlamaConfig;
export type Family = 'gpt2' | 'bert' | 'llama';
export type ModelType = ModelConfig['model_type'];
export const MODEL_TYPES: readonly ModelType[] = ['gpt2', 'bert', 'llama', 'mistral', 'qwen2'];

export function familyOf(modelType: ModelType): Family {
  return modelType === 'gpt2' ? 'gpt2' : modelType === 'bert' ? 'bert' : 'llama';
}

const INT32_MAX = 2 ** 31 - 1;
const MAX_LABELS = 100_000;
/**
 * Layers are built one by one before any weight is read, so a depth no published model comes near
 * (the deepest have ~130) is refused as corruption even when its small width would fit in memory.
 */
const MAX_LAYERS = 1000;

/** Reads typed fields of a JSON object, with defaults, remembering which fields it consumed. */
class Fields {
  readonly used = new Set<string>();
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly source: string,
  ) {}

  private get(name: string): unknown {
    this.used.add(name);
    return this.json[name];
  }

  fail(name: string, expected: string, got: unknown): never {
    throw new Error(`${this.source}: field "${name}" must be ${expected}, got ${shortJson(got)}`);
  }

  /** Sizes and ids go to int32 kernels: larger values are corruption, not a model (a 1e308 is an "integer"). */
  int(name: string, def: number, min = 1, max = INT32_MAX): number {
    const v = this.get(name) ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(name, `an integer in [${min}, ${max}]`, v);
    return v;
  }

  intOrNull(name: string, def: number | null, min = 0): number | null {
    const v = this.get(name);
    if (v === undefined) return def;
    if (v === null) return null;
    return this.int(name, 0, min);
  }

  num(name: string, def: number, check: (v: number) => boolean = () => true, expected = 'a number'): number {
    const v = this.get(name) ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) this.fail(name, expected, v);
    return v;
  }

  prob(name: string, def: number): number {
    return this.num(name, def, (v) => v >= 0 && v < 1, 'a probability in [0, 1)');
  }

  probOrNull(name: string): number | null {
    const v = this.get(name);
    return v === undefined || v === null ? null : this.prob(name, 0);
  }

  bool(name: string, def: boolean): boolean {
    const v = this.get(name) ?? def;
    if (typeof v !== 'boolean') this.fail(name, 'true or false', v);
    return v;
  }

  str(name: string, def: string, allowed?: readonly string[]): string {
    const v = this.get(name) ?? def;
    if (typeof v !== 'string') this.fail(name, 'a string', v);
    if (allowed && !allowed.includes(v)) this.fail(name, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, v);
    return v;
  }

  raw(name: string): unknown {
    return this.get(name);
  }

  extra(): Record<string, unknown> {
    return Object.fromEntries(Object.entries(this.json).filter(([k]) => !this.used.has(k)));
  }
}

const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu', 'silu', 'swish', 'tanh'];

function parseCommon(f: Fields, json: Record<string, unknown>, source: string, def: { pad: number | null; bos: number | null; eos: number | null; tie: boolean }) {
  const architectures = f.raw('architectures');
  if (architectures !== undefined && architectures !== null && !(Array.isArray(architectures) && architectures.every((a) => typeof a === 'string'))) {
    f.fail('architectures', 'a list of class names', architectures);
  }
  const eos = f.raw('eos_token_id');
  if (eos !== undefined && eos !== null && !(Number.isInteger(eos) || (Array.isArray(eos) && eos.every((e) => Number.isInteger(e))))) {
    f.fail('eos_token_id', 'a token id or a list of them', eos);
  }
  const problem = f.raw('problem_type');
  if (problem !== undefined && problem !== null && !['regression', 'single_label_classification', 'multi_label_classification'].includes(problem as string)) {
    f.fail('problem_type', '"regression", "single_label_classification" or "multi_label_classification"', problem);
  }
  const labels = parseLabels(json, source);
  f.raw('id2label');
  f.raw('label2id');
  f.raw('num_labels');
  return {
    ...(architectures ? { architectures: architectures as string[] } : {}),
    ...labels,
    ...(problem ? { problem_type: problem as ProblemType } : {}),
    pad_token_id: f.intOrNull('pad_token_id', def.pad),
    bos_token_id: f.intOrNull('bos_token_id', def.bos),
    eos_token_id: eos === undefined ? def.eos : (eos as number | number[] | null),
    tie_word_embeddings: f.bool('tie_word_embeddings', def.tie),
    initializer_range: f.num('initializer_range', 0.02, (v) => v >= 0, 'a number >= 0'),
  };
}

/** id2label/label2id/num_labels, checked against each other (keys 0..n-1, same names). */
function parseLabels(json: Record<string, unknown>, source: string): { id2label?: Record<string, string>; label2id?: Record<string, number> } {
  const id2label = json.id2label;
  const numLabels = json.num_labels;
  if (id2label === undefined || id2label === null) {
    if (numLabels === undefined || numLabels === null) return {};
    // Label names are built for each class: a count beyond any real label set is corruption.
    if (!Number.isInteger(numLabels) || (numLabels as number) < 1 || (numLabels as number) > MAX_LABELS) {
      throw new Error(`${source}: field "num_labels" must be an integer in [1, ${MAX_LABELS}], got ${shortJson(numLabels)}`);
    }
    return makeLabels(numLabels as number);
  }
  if (typeof id2label !== 'object' || Array.isArray(id2label)) {
    throw new Error(`${source}: field "id2label" must be an object {"0": "label", ...}, got ${shortJson(id2label)}`);
  }
  const entries = Object.entries(id2label as Record<string, unknown>);
  const out: Record<string, string> = {};
  for (let i = 0; i < entries.length; i++) {
    const name = (id2label as Record<string, unknown>)[String(i)];
    if (typeof name !== 'string') throw new Error(`${source}: field "id2label" must map "0".."${entries.length - 1}" to names; "${i}" is ${shortJson(name)}`);
    out[String(i)] = name;
  }
  if (numLabels !== undefined && numLabels !== null && numLabels !== entries.length) {
    throw new Error(`${source}: field "num_labels" (${shortJson(numLabels)}) disagrees with id2label (${entries.length} labels)`);
  }
  return { id2label: out, label2id: Object.fromEntries(Object.entries(out).map(([k, v]) => [v, Number(k)])) };
}

/** Label maps for n classes, named LABEL_i like transformers. */
export function makeLabels(n: number, names?: readonly string[]): { id2label: Record<string, string>; label2id: Record<string, number> } {
  if (names && names.length !== n) throw new Error(`${names.length} label names for ${n} labels`);
  const id2label: Record<string, string> = {};
  for (let i = 0; i < n; i++) id2label[String(i)] = names?.[i] ?? `LABEL_${i}`;
  return { id2label, label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)])) };
}

/** Number of labels of a classification config (2 when none are set, as transformers). */
export function numLabels(config: ModelConfig): number {
  return config.id2label ? Object.keys(config.id2label).length : 2;
}

function checkDivisible(source: string, a: string, av: number, b: string, bv: number): void {
  if (av % bv !== 0) throw new Error(`${source}: ${a} (${av}) is not divisible by ${b} (${bv})`);
}

function checkTokenId(source: string, name: string, id: number | null, vocab: number): void {
  if (id !== null && id >= vocab) throw new Error(`${source}: ${name} (${id}) is outside the vocabulary (vocab_size ${vocab})`);
}

function parseGpt2(f: Fields, json: Record<string, unknown>, source: string): GPT2Config {
  const c: GPT2Config = {
    model_type: 'gpt2',
    ...parseCommon(f, json, source, { pad: null, bos: 50256, eos: 50256, tie: true }),
    vocab_size: f.int('vocab_size', 50257),
    n_positions: f.int('n_positions', 1024),
    n_embd: f.int('n_embd', 768),
    n_layer: f.int('n_layer', 12, 1, MAX_LAYERS),
    n_head: f.int('n_head', 12),
    n_inner: f.intOrNull('n_inner', null, 1),
    activation_function: f.str('activation_function', 'gelu_new', ACTIVATIONS),
    resid_pdrop: f.prob('resid_pdrop', 0.1),
    embd_pdrop: f.prob('embd_pdrop', 0.1),
    attn_pdrop: f.prob('attn_pdrop', 0.1),
    layer_norm_epsilon: f.num('layer_norm_epsilon', 1e-5, (v) => v > 0, 'a number > 0'),
    scale_attn_weights: f.bool('scale_attn_weights', true),
    scale_attn_by_inverse_layer_idx: f.bool('scale_attn_by_inverse_layer_idx', false),
    reorder_and_upcast_attn: f.bool('reorder_and_upcast_attn', false),
    classifier_dropout: f.probOrNull('classifier_dropout'),
    extra: {},
  };
  checkDivisible(source, 'n_embd', c.n_embd, 'n_head', c.n_head);
  checkTokenId(source, 'pad_token_id', c.pad_token_id, c.vocab_size);
  return c;
}

function parseBert(f: Fields, json: Record<string, unknown>, source: string): BertConfig {
  const c: BertConfig = {
    model_type: 'bert',
    ...parseCommon(f, json, source, { pad: 0, bos: null, eos: null, tie: true }),
    vocab_size: f.int('vocab_size', 30522),
    hidden_size: f.int('hidden_size', 768),
    num_hidden_layers: f.int('num_hidden_layers', 12, 1, MAX_LAYERS),
    num_attention_heads: f.int('num_attention_heads', 12),
    intermediate_size: f.int('intermediate_size', 3072),
    hidden_act: f.str('hidden_act', 'gelu', ACTIVATIONS),
    hidden_dropout_prob: f.prob('hidden_dropout_prob', 0.1),
    attention_probs_dropout_prob: f.prob('attention_probs_dropout_prob', 0.1),
    max_position_embeddings: f.int('max_position_embeddings', 512),
    type_vocab_size: f.int('type_vocab_size', 2),
    layer_norm_eps: f.num('layer_norm_eps', 1e-12, (v) => v > 0, 'a number > 0'),
    position_embedding_type: f.str('position_embedding_type', 'absolute', ['absolute']) as 'absolute',
    classifier_dropout: f.probOrNull('classifier_dropout'),
    extra: {},
  };
  checkDivisible(source, 'hidden_size', c.hidden_size, 'num_attention_heads', c.num_attention_heads);
  checkTokenId(source, 'pad_token_id', c.pad_token_id, c.vocab_size);
  return c;
}

const LLAMA_DEFAULTS = {
  llama: { vocab: 32000, hidden: 4096, inter: 11008, layers: 32, heads: 32, kv: null, maxPos: 2048, eps: 1e-6, bos: 1, eos: 2, window: null },
  mistral: { vocab: 32000, hidden: 4096, inter: 14336, layers: 32, heads: 32, kv: 8, maxPos: 4096 * 32, eps: 1e-6, bos: 1, eos: 2, window: 4096 },
  qwen2: { vocab: 151936, hidden: 4096, inter: 22016, layers: 32, heads: 32, kv: 32, maxPos: 32768, eps: 1e-6, bos: null, eos: null, window: 4096 },
} as const;

function parseRopeScaling(f: Fields, source: string): RopeScaling | null {
  const v = f.raw('rope_scaling');
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) f.fail('rope_scaling', 'an object or null', v);
  const r = v as Record<string, unknown>;
  const kind = r.rope_type ?? r.type;
  const at = `${source}: field "rope_scaling"`;
  if (!['linear', 'dynamic', 'llama3', 'default'].includes(kind as string)) {
    throw new Error(`${at}: rope_type ${shortJson(kind)} is not supported (supported: linear, dynamic, llama3, default)`);
  }
  const num = (name: string, required: boolean): number | undefined => {
    const x = r[name];
    if (x === undefined && !required) return undefined;
    if (typeof x !== 'number' || !(x > 0)) throw new Error(`${at}: "${name}" must be a number > 0, got ${shortJson(x)}`);
    return x;
  };
  const out: RopeScaling = { ...r, rope_type: kind as RopeScaling['rope_type'], factor: num('factor', kind !== 'default') ?? 1 };
  if (kind === 'llama3') {
    out.low_freq_factor = num('low_freq_factor', true);
    out.high_freq_factor = num('high_freq_factor', true);
    out.original_max_position_embeddings = num('original_max_position_embeddings', true);
    if (out.high_freq_factor! <= out.low_freq_factor!) throw new Error(`${at}: high_freq_factor must exceed low_freq_factor`);
  }
  return out;
}

function parseLlama(f: Fields, json: Record<string, unknown>, source: string, modelType: LlamaConfig['model_type']): LlamaConfig {
  const d = LLAMA_DEFAULTS[modelType];
  const heads = f.int('num_attention_heads', d.heads);
  const c: LlamaConfig = {
    model_type: modelType,
    ...parseCommon(f, json, source, { pad: null, bos: d.bos, eos: d.eos, tie: false }),
    vocab_size: f.int('vocab_size', d.vocab),
    hidden_size: f.int('hidden_size', d.hidden),
    intermediate_size: f.int('intermediate_size', d.inter),
    num_hidden_layers: f.int('num_hidden_layers', d.layers, 1, MAX_LAYERS),
    num_attention_heads: heads,
    num_key_value_heads: f.int('num_key_value_heads', d.kv ?? heads),
    head_dim: f.intOrNull('head_dim', null, 2),
    hidden_act: f.str('hidden_act', 'silu', ACTIVATIONS),
    max_position_embeddings: f.int('max_position_embeddings', d.maxPos),
    rms_norm_eps: f.num('rms_norm_eps', d.eps, (v) => v > 0, 'a number > 0'),
    rope_theta: f.num('rope_theta', 10000, (v) => v > 0, 'a number > 0'),
    rope_scaling: parseRopeScaling(f, source),
    attention_bias: f.bool('attention_bias', false),
    attention_dropout: f.prob('attention_dropout', 0),
    mlp_bias: f.bool('mlp_bias', false),
    sliding_window: f.intOrNull('sliding_window', d.window, 1),
    use_sliding_window: f.bool('use_sliding_window', modelType === 'mistral'),
    extra: {},
  };
  if (c.head_dim === null) checkDivisible(source, 'hidden_size', c.hidden_size, 'num_attention_heads', heads);
  if (llamaHeadDim(c) % 2 !== 0) throw new Error(`${source}: head_dim (${llamaHeadDim(c)}) must be even for rotary embeddings`);
  checkDivisible(source, 'num_attention_heads', heads, 'num_key_value_heads', c.num_key_value_heads);
  checkTokenId(source, 'pad_token_id', c.pad_token_id, c.vocab_size);
  return c;
}

export function llamaHeadDim(c: LlamaConfig): number {
  return c.head_dim ?? c.hidden_size / c.num_attention_heads;
}

/**
 * Parses a config.json object. `source` names the file in errors. Missing fields take
 * transformers' defaults for the model type; present fields are type-checked and cross-checked.
 */
export function parseConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${source}: expected a JSON object`);
  const obj = json as Record<string, unknown>;
  const f = new Fields(obj, source);
  const modelType = f.raw('model_type');
  if (typeof modelType !== 'string') throw new Error(`${source}: field "model_type" is missing (expected one of ${MODEL_TYPES.join(', ')})`);
  f.raw('torch_dtype');
  f.raw('transformers_version');
  let c: ModelConfig;
  if (modelType === 'gpt2') c = parseGpt2(f, obj, source);
  else if (modelType === 'bert') c = parseBert(f, obj, source);
  else if (modelType === 'llama' || modelType === 'mistral' || modelType === 'qwen2') c = parseLlama(f, obj, source, modelType);
  else throw new Error(`${source}: model_type "${modelType}" is not supported (supported: ${MODEL_TYPES.join(', ')})`);
  c.extra = f.extra();
  return c;
}

/** The config.json object transformers reads: every field, extras included, float32 weights. */
export function configToJSON(c: ModelConfig): Record<string, unknown> {
  const { extra, ...fields } = c;
  const out: Record<string, unknown> = { ...extra, ...fields, torch_dtype: 'float32' };
  // Newer transformers read config.head_dim when the attribute exists, so never write null there.
  if (c.model_type === 'llama' || c.model_type === 'mistral' || c.model_type === 'qwen2') out.head_dim = llamaHeadDim(c);
  // num_labels is not written: transformers derives it from id2label.
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

export type Preset = 'tiny' | 'small' | 'base';

/**
 * Fresh configs of the benchmark shapes (../shared/bench/reference/README.md): tiny and small are
 * 4L/d256 and 6L/d384 with an 8192 vocabulary; base is GPT-2 small, BERT-base, SmolLM2-135M.
 */
export function presetConfig(family: Family, preset: Preset, overrides: Record<string, unknown> = {}): ModelConfig {
  const p = { tiny: { l: 4, h: 4, d: 256, f: 1024, kv: 2, sw: 704 }, small: { l: 6, h: 6, d: 384, f: 1536, kv: 2, sw: 1024 } } as const;
  let json: Record<string, unknown>;
  if (family === 'gpt2') {
    json = preset === 'base' ? { model_type: 'gpt2' } : { model_type: 'gpt2', n_layer: p[preset].l, n_head: p[preset].h, n_embd: p[preset].d, n_inner: p[preset].f, vocab_size: 8192, bos_token_id: 0, eos_token_id: 0 };
  } else if (family === 'bert') {
    json = preset === 'base' ? { model_type: 'bert' } : { model_type: 'bert', num_hidden_layers: p[preset].l, num_attention_heads: p[preset].h, hidden_size: p[preset].d, intermediate_size: p[preset].f, vocab_size: 8192 };
  } else {
    json = preset === 'base'
      ? { model_type: 'llama', num_hidden_layers: 30, hidden_size: 576, num_attention_heads: 9, num_key_value_heads: 3, intermediate_size: 1536, vocab_size: 49152, rope_theta: 100000, max_position_embeddings: 8192, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0 }
      : { model_type: 'llama', num_hidden_layers: p[preset].l, hidden_size: p[preset].d, num_attention_heads: p[preset].h, num_key_value_heads: p[preset].kv, intermediate_size: p[preset].sw, vocab_size: 8192, max_position_embeddings: 2048, bos_token_id: 0, eos_token_id: 0 };
  }
  return parseConfig({ ...json, ...overrides }, `preset ${family}/${preset}`);
}
