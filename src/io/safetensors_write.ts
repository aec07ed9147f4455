// Writes safetensors files byte-compatible with the Python library (same header layout and tensor
// order), atomically, one tensor in memory at a time; and transformers-style sharded checkpoints.

import { open, readdir, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { buildHeader, DTYPE_BYTES, encodeTensor, isDType, numel, SafetensorsError } from './safetensors_format.js';
import type { SafetensorsDType } from './safetensors_format.js';
import { faultPoint } from '../faults.js';

export type TensorData = Float32Array | Int32Array | BigInt64Array;

export interface TensorToWrite {
  name: string;
  shape: number[];
  /** The elements, or a function producing them when this tensor's turn comes (e.g. a device read). */
  data: TensorData | (() => TensorData | Promise<TensorData>);
  /** Stored dtype; by default F32, I32, I64 for Float32Array, Int32Array, BigInt64Array data. */
  dtype?: SafetensorsDType;
}

/** transformers' default `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const MAX_WRITE = 1 << 30;

/**
 * Writes one safetensors file atomically (temp file in the same folder, fsync, rename).
 * `metadata` defaults to {format: 'pt'}, which transformers' loader requires; pass {} for none.
 */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): Promise<void> {
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
  const specs = tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: dtypeOf(path, t) }));
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '' || t.name === '__metadata__') throw new SafetensorsError(path, 'reserved or empty tensor name', t.name);
    if (seen.has(t.name)) throw new SafetensorsError(path, 'tensor name given twice', t.name);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(path, `shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`, t.name);
    }
    if (typeof t.data !== 'function') checkLength(path, t, t.data);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(path, `metadata "${k}" is not a string`);
  }
  const { prefix, order } = buildHeader(specs, metadata);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    let at = await writeAll(fh, prefix, 0);
    for (const i of order) {
      const t = tensors[i]!;
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      checkLength(path, t, data);
      const bytes = encodeTensor(data, specs[i]!.dtype);
      if (typeof bytes === 'string') throw new SafetensorsError(path, `cannot store as ${specs[i]!.dtype}: ${bytes}`, t.name);
      at = await writeAll(fh, bytes, at);
      faultPoint(`safetensors ${basename(path)}`);
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}

export interface ShardedWriteOptions {
  /** Largest shard in tensor bytes (transformers' max_shard_size); default 5 GB. */
  maxShardBytes?: number;
  metadata?: Record<string, string>;
}

export interface ShardedWriteResult {
  /** The weight files written, names relative to the folder. */
  files: string[];
  /** The index file name, or null when everything fit in model.safetensors. */
  index: string | null;
  totalBytes: number;
}

/**
 * Writes a model folder's weights as transformers does: model.safetensors when they fit in one
 * shard, else model-0000k-of-0000N.safetensors plus model.safetensors.index.json. Shards are filled
 * greedily in the given order; a tensor larger than the limit gets a shard of its own. Weight files
 * of an earlier save that the new set does not use are removed, so a stale file cannot shadow it;
 * the index is written last.
 */
export async function writeShardedSafetensors(dir: string, tensors: readonly TensorToWrite[], options: ShardedWriteOptions = {}): Promise<ShardedWriteResult> {
  const max = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(max > 0)) throw new Error(`writeShardedSafetensors: maxShardBytes must be positive, got ${max}`);
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  let totalBytes = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * DTYPE_BYTES[dtypeOf(join(dir, 'model.safetensors'), t)];
    totalBytes += bytes;
    if (bytes > max) {
      groups.push([t]);
      continue;
    }
    if (currentBytes + bytes > max && current.length > 0) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  const pad = (k: number): string => String(k).padStart(5, '0');
  const files = groups.length === 1 ? ['model.safetensors'] : groups.map((_, k) => `model-${pad(k + 1)}-of-${pad(groups.length)}.safetensors`);
  for (let k = 0; k < groups.length; k++) await writeSafetensors(join(dir, files[k]!), groups[k]!, options.metadata);

  const stale = (await readdir(dir)).filter((f) => !files.includes(f) &&
    (/^model-\d{5}-of-\d{5}\.safetensors$/.test(f) || (groups.length > 1 && f === 'model.safetensors') || (groups.length === 1 && f === 'model.safetensors.index.json')));
  for (const f of stale) await rm(join(dir, f), { force: true });
  if (groups.length === 1) return { files, index: null, totalBytes };

  const weightMap: Record<string, string> = {};
  const names = groups.flatMap((g, k) => g.map((t) => [t.name, files[k]!] as const));
  for (const [name, file] of names.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) weightMap[name] = file;
  const index = 'model.safetensors.index.json';
  await writeTextAtomic(join(dir, index), `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2)}\n`);
  return { files, index, totalBytes };
}

function dtypeOf(path: string, t: TensorToWrite): SafetensorsDType {
  if (t.dtype !== undefined) {
    if (!isDType(t.dtype)) throw new SafetensorsError(path, `cannot write dtype ${JSON.stringify(t.dtype)}`, t.name);
    return t.dtype;
  }
  return t.data instanceof Int32Array ? 'I32' : t.data instanceof BigInt64Array ? 'I64' : 'F32';
}

function checkLength(path: string, t: TensorToWrite, data: TensorData): void {
  if (!(data instanceof Float32Array) && !(data instanceof Int32Array) && !(data instanceof BigInt64Array)) {
    throw new SafetensorsError(path, 'data is not a Float32Array, Int32Array or BigInt64Array', t.name);
  }
  if (data.length !== numel(t.shape)) {
    throw new SafetensorsError(path, `has ${data.length} elements, shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)}`, t.name);
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(MAX_WRITE, bytes.length - done), position + done);
    done += bytesWritten;
  }
  return position + done;
}

async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
