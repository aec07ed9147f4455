// Saving a model as a Hugging Face folder (config.json + model.safetensors), atomically, and the
// folder-swap helper the adapter writer shares. Loading is in pretrained.ts.

import { mkdir, readdir, rename, rm, stat, writeFile, link, copyFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { writeShardedSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { LoraLinear } from '../nn/lora.js';
import { configToJSON, makeLabels, numLabels } from './config.js';
import type { PretrainedModel } from './model.js';
import { faultPoint } from '../faults.js';

export interface SaveOptions {
  /** Largest weight file in bytes before sharding (transformers' max_shard_size); default 5 GB. */
  maxShardBytes?: number;
}

/** The config.json object of a model: its class, and label maps for classification heads. */
export function modelConfigJSON(model: PretrainedModel): Record<string, unknown> {
  const config = { ...model.config, architectures: [model.architecture] };
  if (model.task === 'sequence-classification' || model.task === 'token-classification') {
    Object.assign(config, config.id2label ? {} : makeLabels(numLabels(model.config)));
  }
  return configToJSON(config);
}

/**
 * Writes config.json and model.safetensors ({"format":"pt"}) into `dir`. Tied weights are written
 * once, under the embedding's name, as transformers does. Unmerged LoRA adapters are refused: merge
 * them (mergeAndUnload) for a plain checkpoint, or save the adapter alone (saveAdapter).
 */
export async function savePretrained(model: PretrainedModel, dir: string, options: SaveOptions = {}): Promise<void> {
  const lora = model.namedModules().filter(([, m]) => m instanceof LoraLinear) as [string, LoraLinear][];
  const unmerged = lora.filter(([, m]) => !m.merged).map(([n]) => n);
  if (unmerged.length) {
    throw new Error(`save(${dir}): LoRA adapters on ${unmerged.slice(0, 3).join(', ')}${unmerged.length > 3 ? ', ...' : ''} are not merged; call mergeAndUnload(model) first, or saveAdapter() to write the adapter alone`);
  }
  const tensors: TensorToWrite[] = [...model.stateDict()]
    .filter(([name]) => !/(^|\.)lora_(A|B)\.weight$/.test(name))
    .map(([name, t]) => ({ name, shape: [...t.shape], data: () => t.dataSync() }));
  const config = `${JSON.stringify(modelConfigJSON(model), null, 2)}\n`;
  await writeFolderAtomic(dir, ['config.json', 'model.safetensors', 'model.safetensors.index.json'], async (tmp) => {
    await writeShardedSafetensors(tmp, tensors, { maxShardBytes: options.maxShardBytes, metadata: { format: 'pt' } });
    await writeFile(join(tmp, 'config.json'), config);
  });
}

/** Weight files of an earlier save that must not survive next to the new ones (they would shadow them). */
const STALE = /^(model-\d{5}-of-\d{5}\.safetensors|model\.safetensors(\.index\.json)?|pytorch_model.*\.bin(\.index\.json)?)$/;

/**
 * Fills a fresh temporary folder beside `dir` with `fill`, then swaps it in with renames, so a
 * reader sees the old folder or the new one, never half of each. Files already in `dir` that the
 * new save does not write (a tokenizer, a README) are carried over; stale weight files are not.
 */
export async function writeFolderAtomic(dir: string, written: readonly string[], fill: (tmp: string) => Promise<void>, stale: RegExp = STALE): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const suffix = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = join(parent, `.${basename(target)}.tmp-${suffix}`);
  const old = join(parent, `.${basename(target)}.old-${suffix}`);
  await mkdir(tmp);
  try {
    await fill(tmp);
    const existing = await stat(target).catch(() => undefined);
    if (existing && !existing.isDirectory()) throw new Error(`${dir} exists and is not a folder`);
    if (existing) {
      const fresh = new Set(await readdir(tmp));
      for (const entry of await readdir(target, { withFileTypes: true })) {
        if (fresh.has(entry.name) || written.includes(entry.name) || stale.test(entry.name)) continue;
        const from = join(target, entry.name);
        const to = join(tmp, entry.name);
        if (entry.isDirectory()) await copyDir(from, to);
        else await link(from, to).catch(() => copyFile(from, to));
      }
      await rename(target, old);
      faultPoint('swap folder');
      await rename(tmp, target).catch(async (e: unknown) => {
        await rename(old, target);
        throw e;
      });
    } else await rename(tmp, target);
    if (existing) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isDirectory()) await copyDir(join(from, entry.name), join(to, entry.name));
    else await copyFile(join(from, entry.name), join(to, entry.name));
  }
}
