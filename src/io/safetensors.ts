// Reads safetensors checkpoints (one file or transformers' sharded index) by streaming: the header at
// open, then each tensor by positioned reads, so a multi-GB model is never held twice. Writer: safetensors_write.ts.

import { open, readFile, realpath, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';
import {
  bf16ToF32Bits, DTYPE_BYTES, f16ToF32Bits, headerLength, numel, parseHeader, SafetensorsError,
} from './safetensors_format.js';
import type { TensorEntry, TensorInfo } from './safetensors_format.js';

export { SafetensorsError } from './safetensors_format.js';
export type { SafetensorsDType, TensorInfo } from './safetensors_format.js';
export * from './safetensors_write.js';

export const SAFE_WEIGHTS = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX = 'model.safetensors.index.json';

/** A model folder's weights, however many files hold them. */
export interface Checkpoint extends AsyncDisposable {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** `__metadata__` of the file (of the first shard when sharded), e.g. {format: 'pt'}. */
  metadata: Record<string, string>;
  /** The files opened, absolute. */
  readonly files: readonly string[];
  /**
   * Reads one tensor as f32 (F16/BF16 widened exactly, I64/I32 converted) into `into` when given
   * (exactly the tensor's size: a loader reads straight into parameter memory, no second copy), else
   * into a fresh Float32Array.
   */
  readF32(name: string, into?: Float32Array): Promise<Float32Array>;
  /** Reads an I32 or I64 tensor (range-checked) into a fresh Int32Array. */
  readI32(name: string): Promise<Int32Array>;
  /** The tensor's bytes as stored (little-endian). */
  readRaw(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Largest single fs read; Node refuses reads of 2 GiB and more. */
const MAX_READ = 1 << 30;
/** Conversions (F16, BF16, I64) go through a scratch buffer of at most this many bytes. */
const SCRATCH_BYTES = 8 << 20;

function checkHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

/** One open safetensors file. */
export class SafetensorsFile implements Checkpoint {
  readonly files: readonly string[];
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly entries: Map<string, TensorEntry>,
    public metadata: Record<string, string>,
  ) {
    this.files = [path];
  }

  static async open(path: string): Promise<SafetensorsFile> {
    checkHost();
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new SafetensorsError(path, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new SafetensorsError(path, 'not a regular file');
      const prefix = new Uint8Array(8);
      await readFully(fh, path, prefix, 0, undefined, Math.min(8, st.size));
      const n = headerLength(path, prefix, st.size);
      const header = new Uint8Array(n);
      await readFully(fh, path, header, 8, undefined, n);
      const { tensors, metadata } = parseHeader(path, header, 8 + n, st.size);
      return new SafetensorsFile(path, fh, tensors, metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get tensors(): ReadonlyMap<string, TensorInfo> {
    return this.entries;
  }

  /** Name, dtype, shape and absolute byte range of a tensor. */
  entry(name: string): TensorEntry {
    if (this.closed) throw new SafetensorsError(this.path, 'read after close()', name);
    const e = this.entries.get(name);
    if (e === undefined) throw new SafetensorsError(this.path, 'no such tensor', name);
    return e;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const out = new Uint8Array(e.byteLength);
    await readFully(this.fh, this.path, out, e.byteOffset, name);
    return out;
  }

  async readF32(name: string, into?: Float32Array): Promise<Float32Array> {
    const e = this.entry(name);
    const n = numel(e.shape);
    if (into && into.length !== n) {
      throw new SafetensorsError(this.path, `destination holds ${into.length} values, the tensor ${n}`, name);
    }
    const out = into ?? new Float32Array(n);
    const outBytes = new Uint8Array(out.buffer, out.byteOffset, n * 4);
    if (e.dtype === 'F32') {
      await readFully(this.fh, this.path, outBytes, e.byteOffset, name);
      return out;
    }
    if (e.dtype === 'I32') {
      const tmp = new Int32Array(out.buffer, out.byteOffset, n); // same size: read in place, convert in place
      await readFully(this.fh, this.path, outBytes, e.byteOffset, name);
      for (let i = 0; i < n; i++) out[i] = tmp[i]!;
      return out;
    }
    await this.convert(e, (bytes, from, count) => {
      if (e.dtype === 'I64') {
        return this.i64Chunk(e, bytes, from, count, out, Number.isSafeInteger, 'outside +-2^53, not exact as a number');
      }
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
      const dst = new Uint32Array(out.buffer, out.byteOffset + from * 4, count);
      (e.dtype === 'F16' ? f16ToF32Bits : bf16ToF32Bits)(src, dst);
    });
    return out;
  }

  async readI32(name: string): Promise<Int32Array> {
    const e = this.entry(name);
    const out = new Int32Array(numel(e.shape));
    if (e.dtype === 'I32') {
      await readFully(this.fh, this.path, new Uint8Array(out.buffer), e.byteOffset, name);
      return out;
    }
    if (e.dtype !== 'I64') throw new SafetensorsError(this.path, `is ${e.dtype}, not an integer tensor`, name);
    const isI32 = (v: number): boolean => v >= -2147483648 && v <= 2147483647;
    await this.convert(e, (bytes, from, count) => this.i64Chunk(e, bytes, from, count, out, isI32, 'outside the int32 range'));
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Streams a tensor through a scratch buffer, `step(bytes, firstElement, count)` per chunk. */
  private async convert(e: TensorEntry, step: (bytes: Uint8Array, from: number, count: number) => void): Promise<void> {
    const size = DTYPE_BYTES[e.dtype];
    const perChunk = Math.max(1, Math.floor(SCRATCH_BYTES / size));
    const scratch = new Uint8Array(Math.min(e.byteLength, perChunk * size));
    const n = numel(e.shape);
    for (let from = 0; from < n; from += perChunk) {
      const count = Math.min(perChunk, n - from);
      const bytes = scratch.subarray(0, count * size);
      await readFully(this.fh, this.path, bytes, e.byteOffset + from * size, e.name);
      step(bytes, from, count);
    }
  }

  private i64Chunk(e: TensorEntry, bytes: Uint8Array, from: number, count: number, out: Float32Array | Int32Array,
    ok: (v: number) => boolean, why: string): void {
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, 2 * count);
    for (let i = 0; i < count; i++) {
      const v = words[2 * i + 1]! * 4294967296 + (words[2 * i]! >>> 0);
      if (!ok(v)) {
        const exact = (BigInt(words[2 * i + 1]!) << 32n) + BigInt(words[2 * i]! >>> 0);
        throw new SafetensorsError(this.path, `I64 element ${from + i} (${exact}) is ${why}`, e.name);
      }
      out[from + i] = v;
    }
  }
}

/** Opens one safetensors file (header read and validated; tensors read on demand). */
export function openSafetensors(file: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(file);
}

/** Weights spread over shards by transformers' model.safetensors.index.json. */
class ShardedCheckpoint implements Checkpoint {
  readonly files: readonly string[];

  constructor(private readonly shards: SafetensorsFile[], private readonly owner: Map<string, SafetensorsFile>,
    readonly tensors: ReadonlyMap<string, TensorInfo>, public metadata: Record<string, string>) {
    this.files = shards.map((s) => s.path);
  }

  private shard(name: string): SafetensorsFile {
    const s = this.owner.get(name);
    if (s === undefined) throw new Error(`checkpoint has no tensor "${name}"`);
    return s;
  }

  readF32(name: string, into?: Float32Array): Promise<Float32Array> { return this.shard(name).readF32(name, into); }
  readI32(name: string): Promise<Int32Array> { return this.shard(name).readI32(name); }
  readRaw(name: string): Promise<Uint8Array> { return this.shard(name).readRaw(name); }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Opens a model folder's weights: model.safetensors if present (transformers prefers it too), else
 * the shards named by model.safetensors.index.json. A path to a .safetensors file opens that file.
 * Every header is read and validated here; shard names may not leave the folder.
 */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) throw new Error(`${dir}: no such file or folder`);
  if (st.isFile()) return SafetensorsFile.open(dir);
  const root = await realpath(dir);
  const single = join(dir, SAFE_WEIGHTS);
  if (await exists(single)) return SafetensorsFile.open(await insideFolder(root, dir, SAFE_WEIGHTS, dir));
  const indexPath = join(dir, SAFE_WEIGHTS_INDEX);
  if (await exists(indexPath)) return openSharded(root, dir, indexPath);
  const bin = (await exists(join(dir, 'pytorch_model.bin'))) || (await exists(join(dir, 'pytorch_model.bin.index.json')));
  throw new Error(`${dir}: no ${SAFE_WEIGHTS} or ${SAFE_WEIGHTS_INDEX}` +
    (bin ? ' (only PyTorch .bin weights, which Loom does not read: convert them to safetensors with transformers first)' : ''));
}

async function openSharded(root: string, dir: string, indexPath: string): Promise<Checkpoint> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${indexPath}: no "weight_map" object`);
  const byShard = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string') throw new Error(`${indexPath}: weight_map["${name}"] is not a file name`);
    byShard.set(file, [...(byShard.get(file) ?? []), name]);
  }
  const shards: SafetensorsFile[] = [];
  try {
    const owner = new Map<string, SafetensorsFile>();
    const tensors = new Map<string, TensorInfo>();
    for (const [file, names] of byShard) {
      const path = await insideFolder(root, dir, file, `${indexPath}: tensor "${names[0]}" is in shard "${file}"`);
      const shard = await SafetensorsFile.open(path);
      shards.push(shard);
      for (const name of names) {
        const info = shard.tensors.get(name);
        if (info === undefined) throw new Error(`${indexPath}: tensor "${name}" should be in ${path}, which does not hold it`);
        owner.set(name, shard);
      }
    }
    // Index order (transformers sorts it by name).
    for (const name of Object.keys(map)) tensors.set(name, owner.get(name)!.tensors.get(name)!);
    return new ShardedCheckpoint(shards, owner, tensors, shards[0]?.metadata ?? {});
  } catch (e) {
    await Promise.all(shards.map((s) => s.close()));
    throw e;
  }
}

/**
 * Resolves a file named by the folder (or its index) and refuses anything outside the folder:
 * absolute names, `..`, and symlinks pointing elsewhere. The one exception is the Hugging Face hub
 * cache, where snapshots/<rev>/<file> links to ../../blobs/<hash>.
 */
async function insideFolder(root: string, dir: string, file: string, where: string): Promise<string> {
  if (file === '' || isAbsolute(file) || file.includes('\\') || file.includes('\0') || file.split('/').includes('..')) {
    throw new Error(`${where}: refusing a file name that is absolute or leaves the model folder`);
  }
  let real: string;
  try {
    real = await realpath(join(root, file));
  } catch {
    throw new Error(`${where}: file ${join(dir, file)} is missing`);
  }
  const blobs = basename(dirname(root)) === 'snapshots' ? join(dirname(dirname(root)), 'blobs') + sep : undefined;
  if (!real.startsWith(root + sep) && !(blobs !== undefined && real.startsWith(blobs))) {
    throw new Error(`${where}: ${join(dir, file)} resolves to ${real}, outside the model folder; refusing it`);
  }
  return real;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Fills `dst` from `position`; a short file is an error naming the tensor, never a partial buffer. */
async function readFully(fh: FileHandle, file: string, dst: Uint8Array, position: number, tensor?: string, expect = dst.length): Promise<void> {
  let done = 0;
  while (done < expect) {
    const { bytesRead } = await fh.read(dst, done, Math.min(MAX_READ, expect - done), position + done);
    if (bytesRead === 0) throw new SafetensorsError(file, `file ended at byte ${position + done} while reading (changed on disk?)`, tensor);
    done += bytesRead;
  }
}
