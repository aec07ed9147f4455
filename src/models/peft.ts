// LoRA adapters in PEFT's folder format: adapter_config.json + adapter_model.safetensors with keys
// `base_model.model.<module path>.lora_A.weight`, so PEFT's PeftModel.from_pretrained reads them.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint, writeSafetensors } from '../io/safetensors.js';
import { applyLora, loraState, type LoraOptions, type LoraState, type TargetModules } from '../nn/lora.js';
import { writeInto } from '../nn/module.js';
import { shapeString } from '../engine/tensor.js';
import { writeFolderAtomic } from './checkpoint.js';
import type { PretrainedModel, Task } from './model.js';

const PREFIX = 'base_model.model.';
const PEFT_TASK: Record<Task, string | null> = {
  'causal-lm': 'CAUSAL_LM',
  'sequence-classification': 'SEQ_CLS',
  'token-classification': 'TOKEN_CLS',
  'masked-lm': null,
};

/** The modules PEFT trains and saves in full for a task (a new classification head). */
export function headModules(model: PretrainedModel): string[] {
  const heads = new Set(model.headParameters.map((p) => p.slice(0, p.lastIndexOf('.'))));
  return model.task === 'sequence-classification' || model.task === 'token-classification' ? [...heads] : [];
}

/**
 * applyLora with PEFT's defaults for a model: a classification head is trained in full and saved
 * with the adapter (PEFT does this for SEQ_CLS / TOKEN_CLS).
 */
export function addLoraAdapter(model: PretrainedModel, options: LoraOptions): LoraState {
  return applyLora(model, { ...options, modulesToSave: options.modulesToSave ?? headModules(model) });
}

function targetsToJSON(t: TargetModules): string | string[] {
  return typeof t === 'string' ? t : t instanceof RegExp ? t.source : [...t];
}

/** Writes the adapter of `model` as PEFT does (only the adapter and modules_to_save, not the base). */
export async function saveAdapter(model: PretrainedModel, dir: string, options: { baseModelNameOrPath?: string } = {}): Promise<void> {
  const state = loraState(model);
  if (!state) throw new Error('saveAdapter: the model has no LoRA adapter (call addLoraAdapter first)');
  const o = state.options;
  const config = {
    peft_type: 'LORA',
    task_type: PEFT_TASK[model.task],
    base_model_name_or_path: options.baseModelNameOrPath ?? null,
    r: o.r,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    target_modules: targetsToJSON(o.targetModules),
    modules_to_save: o.modulesToSave.length ? [...o.modulesToSave] : null,
    fan_in_fan_out: [...state.layers.values()].some((l) => l.fanInFanOut),
    bias: 'none',
    use_rslora: o.useRslora,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
  const tensors = model
    .namedParameters()
    .filter(([name]) => /(^|\.)lora_(A|B)\.weight$/.test(name) || o.modulesToSave.some((m) => name.startsWith(`${m}.`)))
    .map(([name, t]) => ({ name: PREFIX + name, shape: [...t.shape], data: () => t.dataSync() as Float32Array }));
  await writeFolderAtomic(dir, ['adapter_config.json', 'adapter_model.safetensors'], async (tmp) => {
    await writeSafetensors(join(tmp, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    await writeFile(join(tmp, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }, /^adapter_model\.(safetensors|bin)$/);
}

/** Reads a PEFT LoRA folder onto `model` (which must not have an adapter yet); returns the adapter. */
export async function loadAdapter(model: PretrainedModel, dir: string): Promise<LoraState> {
  const configPath = join(dir, 'adapter_config.json');
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${configPath}: cannot read (${(e as Error).message})`);
  }
  const fail = (field: string, why: string): never => {
    throw new Error(`${configPath}: field "${field}" ${why}, got ${JSON.stringify(c[field])}`);
  };
  if (c.peft_type !== 'LORA') fail('peft_type', 'must be "LORA"');
  if (!Number.isInteger(c.r) || (c.r as number) < 1) fail('r', 'must be an integer >= 1');
  if (typeof c.lora_alpha !== 'number') fail('lora_alpha', 'must be a number');
  if (c.use_dora) fail('use_dora', 'is not supported (DoRA)');
  for (const f of ['rank_pattern', 'alpha_pattern'] as const) {
    if (c[f] && Object.keys(c[f] as object).length) fail(f, 'is not supported (per-layer ranks)');
  }
  if (c.bias !== undefined && c.bias !== 'none') fail('bias', 'must be "none"');
  for (const f of ['layers_to_transform', 'layers_pattern'] as const) if (c[f] !== undefined && c[f] !== null) fail(f, 'is not supported (use target_modules)');
  const t = c.target_modules;
  const targets = typeof t === 'string' ? t : Array.isArray(t) && t.every((x) => typeof x === 'string') ? (t as string[]) : fail('target_modules', 'must be a list of names or a regex string');
  const modulesToSave = Array.isArray(c.modules_to_save) ? (c.modules_to_save as string[]) : [];
  const state = applyLora(model, {
    r: c.r as number,
    alpha: c.lora_alpha as number,
    dropout: typeof c.lora_dropout === 'number' ? c.lora_dropout : 0,
    targetModules: targets,
    modulesToSave,
    useRslora: c.use_rslora === true,
  });
  const file = join(dir, 'adapter_model.safetensors');
  const checkpoint = await openCheckpoint(file);
  try {
    const own = new Map(model.namedParameters());
    const expected = new Set([...own.keys()].filter((n) => /(^|\.)lora_(A|B)\.weight$/.test(n) || modulesToSave.some((m) => n.startsWith(`${m}.`))));
    for (const [key, info] of checkpoint.tensors) {
      // Some PEFT versions kept the adapter name ("lora_A.default.weight"); drop it.
      const name = key.replace(/^base_model\.model\./, '').replace(/\.(lora_[AB])\.default\./, '.$1.');
      const target = own.get(name);
      if (!target || !expected.has(name)) throw new Error(`${file}: tensor ${key} does not belong to this model's adapter`);
      if (info.shape.length !== target.shape.length || info.shape.some((d, i) => d !== target.shape[i])) {
        throw new Error(`${file}: ${key} has shape ${shapeString(info.shape)}, expected ${shapeString(target.shape)}`);
      }
      writeInto(target, await checkpoint.readF32(key));
      expected.delete(name);
    }
    if (expected.size) throw new Error(`${file}: missing adapter tensors: ${[...expected].map((n) => PREFIX + n).join(', ')}`);
  } finally {
    await checkpoint.close();
  }
  return state;
}
