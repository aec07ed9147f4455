// Building models: from a config and task (createModel, fromPreset) or from a Hugging Face folder
// (loadPretrained), reporting missing and unexpected weights as transformers does.

import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Generator } from '../engine/random.js';
import { shapeString } from '../engine/tensor.js';
import { openCheckpoint, type Checkpoint } from '../io/safetensors.js';
import { writeInto } from '../nn/module.js';
import { assertModelFits, parameterCount } from './size.js';
import { familyOf, makeLabels, parseConfig, presetConfig, type Family, type ModelConfig, type Preset } from './config.js';
import type { ModelOptions, PretrainedModel, Task } from './model.js';
import { TASKS, zeroRow } from './model.js';
import { GPT2ForSequenceClassification, GPT2ForTokenClassification, GPT2LMHeadModel } from './gpt2.js';
import { BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification } from './bert.js';
import { LlamaForCausalLM, LlamaForSequenceClassification, LlamaForTokenClassification } from './llama.js';

/** The tasks each family has a head for. */
export const FAMILY_TASKS: Readonly<Record<Family, readonly Task[]>> = {
  gpt2: ['causal-lm', 'sequence-classification', 'token-classification'],
  bert: ['masked-lm', 'sequence-classification', 'token-classification'],
  llama: ['causal-lm', 'sequence-classification', 'token-classification'],
};

/** Builds the head class of `task` for a config (fresh weights unless options.init is false). */
export function createModel(config: ModelConfig, task?: Task, options: ModelOptions = {}): PretrainedModel {
  const family = familyOf(config.model_type);
  const t = task ?? FAMILY_TASKS[family][0]!;
  if (!FAMILY_TASKS[family].includes(t)) {
    throw new Error(`${config.model_type} has no ${t} head (available: ${FAMILY_TASKS[family].join(', ')})`);
  }
  assertModelFits(config, t, `${config.model_type} config`);
  if (config.model_type === 'gpt2') {
    if (t === 'causal-lm') return new GPT2LMHeadModel(config, options);
    if (t === 'sequence-classification') return new GPT2ForSequenceClassification(config, options);
    return new GPT2ForTokenClassification(config, options);
  }
  if (config.model_type === 'bert') {
    if (t === 'masked-lm') return new BertForMaskedLM(config, options);
    if (t === 'sequence-classification') return new BertForSequenceClassification(config, options);
    return new BertForTokenClassification(config, options);
  }
  if (t === 'causal-lm') return new LlamaForCausalLM(config, options);
  if (t === 'sequence-classification') return new LlamaForSequenceClassification(config, options);
  return new LlamaForTokenClassification(config, options);
}

export interface PresetOptions extends ModelOptions {
  /** Config fields to override (vocab_size of your tokenizer, pad_token_id, dropout, ...). */
  config?: Record<string, unknown>;
  numLabels?: number;
  id2label?: Record<string, string> | readonly string[];
}

/** A fresh model of a preset shape: fromPreset('gpt2', 'tiny', 'causal-lm', { config: { vocab_size: 8000 } }). */
export function fromPreset(family: Family, preset: Preset, task?: Task, options: PresetOptions = {}): PretrainedModel {
  const config = presetConfig(family, preset, { ...options.config, ...labelFields(options) });
  return createModel(config, task, options);
}

function labelFields(options: { numLabels?: number; id2label?: Record<string, string> | readonly string[] }): Record<string, unknown> {
  if (options.id2label) {
    const names = Array.isArray(options.id2label) ? options.id2label : Object.values(options.id2label as Record<string, string>);
    return makeLabels(names.length, names as string[]);
  }
  return options.numLabels ? makeLabels(options.numLabels) : {};
}

/** The task a transformers class name stands for (GPT2LMHeadModel -> causal-lm). */
export function taskOfArchitecture(architecture: string): Task | null {
  if (/(LMHeadModel|ForCausalLM)$/.test(architecture)) return 'causal-lm';
  if (/(ForMaskedLM|ForPreTraining)$/.test(architecture)) return 'masked-lm';
  if (/ForSequenceClassification$/.test(architecture)) return 'sequence-classification';
  if (/ForTokenClassification$/.test(architecture)) return 'token-classification';
  return null;
}

export interface LoadOptions {
  /** The head to build; default: the checkpoint's architecture, else the family's LM head. */
  task?: Task;
  /** Labels of a classification head (replacing the checkpoint's). */
  numLabels?: number;
  id2label?: Record<string, string> | readonly string[];
  /** Seed of newly initialised weights. */
  seed?: number;
  /** Throw on missing or unexpected weights instead of reporting them. */
  strict?: boolean;
  /** Initialise (and report) parameters whose checkpoint shape differs, instead of failing: a new head of another size. */
  ignoreMismatchedSizes?: boolean;
  /** Print the report's warnings (default true). */
  warn?: boolean;
}

export interface LoadReport {
  architecture: string;
  /** Our parameters the checkpoint lacks: newly initialised (a new head, typically). */
  missing: string[];
  /** Checkpoint tensors no parameter uses (a pre-training head, typically). */
  unexpected: string[];
  /** Checkpoint tensors skipped on purpose: tied copies and derived buffers of older transformers. */
  ignored: string[];
  /** With ignoreMismatchedSizes: 'key [checkpoint shape] -> [model shape]' of the tensors not loaded. */
  mismatched: string[];
  warnings: string[];
}

export interface Loaded {
  model: PretrainedModel;
  report: LoadReport;
}

/**
 * Loads a Hugging Face model folder: config.json (model_type, architectures) and its safetensors
 * weights, one tensor at a time. Weights of a bare body (no `transformer.`/`bert.`/`model.` prefix)
 * load into a head model; a head the checkpoint lacks is initialised and reported.
 */
export async function loadPretrained(dir: string, options: LoadOptions = {}): Promise<Loaded> {
  const configPath = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch {
    throw new Error(`${configPath}: not found (expected a Hugging Face model folder)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${configPath}: not valid JSON (${(e as Error).message})`);
  }
  const config = parseConfig(json, configPath);
  // New labels replace the checkpoint's unless they only restate its count.
  const sameCount = options.numLabels !== undefined && !options.id2label && config.id2label && Object.keys(config.id2label).length === options.numLabels;
  if (!sameCount) Object.assign(config, labelFields(options));
  const task = options.task ?? taskOfArchitecture(config.architectures?.[0] ?? '') ?? FAMILY_TASKS[familyOf(config.model_type)][0]!;
  if (!TASKS.includes(task)) throw new Error(`loadPretrained: unknown task "${task}" (tasks: ${TASKS.join(', ')})`);
  assertModelFits(config, task, configPath);
  // Headers first: the model is only built once the weights are known to be of its size.
  const checkpoint = await openCheckpoint(dir);
  let model: PretrainedModel | undefined;
  try {
    assertMatchesWeights(config, task, configPath, checkpoint);
    model = createModel(config, task, { init: false });
    const report = await loadWeights(model, checkpoint, dir, options);
    if (options.warn ?? true) for (const w of report.warnings) console.warn(w);
    return { model, report };
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    await checkpoint.close();
  }
}

/**
 * A config.json is a few hundred bytes and the weights are the real size: a model far larger than
 * the weights it comes with is refused before it is allocated, so a small hostile file cannot make
 * Loom allocate gigabytes. The slack covers what a checkpoint may rightly lack: a new head, an
 * untied LM head over a body whose embedding is there (at most doubling the count).
 */
function assertMatchesWeights(config: ModelConfig, task: Task, configPath: string, checkpoint: Checkpoint): void {
  let values = 0;
  for (const info of checkpoint.tensors.values()) values += info.shape.reduce((a, b) => a * b, 1);
  const needed = parameterCount(config, task);
  if (needed > 2 * values + 2 ** 24) {
    throw new Error(`${configPath}: describes a model of ${needed} parameters, but its weights (${checkpoint.files.map((f) => basename(f)).join(', ')}) ` +
      `hold ${values} values; refusing to build it (do config.json and the weights belong together?)`);
  }
}

/** Checkpoint key -> our parameter name: the body prefix added when absent, old LayerNorm names. */
function keyMapper(model: PretrainedModel, keys: readonly string[]): (key: string) => string {
  const prefix = `${model.basePrefix}.`;
  const bare = !keys.some((k) => k.startsWith(prefix));
  return (key) => {
    let k = key.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
    if (bare) k = prefix + k;
    return k;
  };
}

async function loadWeights(model: PretrainedModel, checkpoint: Checkpoint, dir: string, options: LoadOptions): Promise<LoadReport> {
  const own = model.stateDict();
  const names = [...checkpoint.tensors.keys()];
  const map = keyMapper(model, names);
  const fileOf = async (key: string): Promise<string> => {
    if (checkpoint.files.length === 1) return checkpoint.files[0]!;
    const index = join(dir, 'model.safetensors.index.json');
    const shard = await readFile(index, 'utf8').then((t) => (JSON.parse(t) as { weight_map: Record<string, string> }).weight_map[key]).catch(() => undefined);
    return shard ? join(dir, shard) : index;
  };
  const loaded = new Set<string>();
  const unexpected: string[] = [];
  const ignored: string[] = [];
  const mismatched: string[] = [];
  for (const key of names) {
    const name = map(key);
    const target = own.get(name);
    if (!target) {
      const tied = model.tiedKeys.includes(name) || model.tiedKeys.includes(key);
      if (tied || model.ignoredKeys.some((r) => r.test(name))) ignored.push(key);
      else unexpected.push(key);
      continue;
    }
    const info = checkpoint.tensors.get(key)!;
    if (info.shape.length !== target.shape.length || info.shape.some((d, i) => d !== target.shape[i])) {
      if (options.ignoreMismatchedSizes) {
        mismatched.push(`${key} ${shapeString(info.shape)} -> ${shapeString(target.shape)}`);
        continue;
      }
      const hint = model.headParameters.includes(name) ? ' (a head of another size: pass ignoreMismatchedSizes: true to initialise a new one)' : '';
      throw new Error(`${await fileOf(key)}: ${key} has shape ${shapeString(info.shape)}, expected ${shapeString(target.shape)}${hint}`);
    }
    // Host backends: read the file straight into the parameter (no second copy of the largest tensor).
    const view = target.dtype === 'f32' ? target.backend.hostView?.(target.storage) : null;
    if (view instanceof Float32Array) await checkpoint.readF32(key, view);
    else writeInto(target, await checkpoint.readF32(key));
    loaded.add(name);
  }
  const missing = [...own.keys()].filter((k) => !loaded.has(k));
  if (options.strict && (missing.length || unexpected.length)) {
    throw new Error(`${dir}: strict load of ${model.architecture} failed; missing: [${missing.join(', ')}]; unexpected: [${unexpected.join(', ')}]`);
  }
  if (missing.length) {
    const missingSet = new Set(missing);
    model.initWeights(new Generator(options.seed ?? 0), (n) => missingSet.has(n));
    const pad = model.config.pad_token_id;
    const emb = model.config.model_type === 'bert' ? 'bert.embeddings.word_embeddings.weight' : model.config.model_type === 'gpt2' ? null : 'model.embed_tokens.weight';
    if (emb && pad !== null && missingSet.has(emb)) zeroRow(own.get(emb)!, pad);
  }
  const warnings: string[] = [];
  if (unexpected.length) {
    warnings.push(`Some weights of the model checkpoint at ${dir} were not used when initializing ${model.architecture}: [${unexpected.join(', ')}]`);
  }
  if (mismatched.length) {
    warnings.push(`Some weights of ${model.architecture} were not initialized from the model checkpoint at ${dir} and are newly initialized because the shapes did not match: [${mismatched.join(', ')}]`);
  }
  if (missing.length) {
    warnings.push(
      `Some weights of ${model.architecture} were not initialized from the model checkpoint at ${dir} and are newly initialized: [${missing.join(', ')}]\n` +
        'You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.',
    );
  }
  return { architecture: model.architecture, missing, unexpected, ignored, mismatched, warnings };
}
