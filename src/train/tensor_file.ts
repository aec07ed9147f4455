// Checkpoint state files in the safetensors layout (F32 only: optimiser state and parameters),
// written through an injectable fs so tests can make a write fail like a full disk.

import * as fsp from 'node:fs/promises';
import { endianness } from 'node:os';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { faultPoint, faultsActive } from '../faults.js';

/** The file operations a checkpoint uses; tests replace one to simulate a full disk. */
export interface CheckpointFs {
  mkdir(path: string): Promise<void>;
  /** Writes and fsyncs a new file from chunks (data is on disk before the folder is renamed). */
  writeFile(path: string, chunks: readonly Uint8Array[]): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  /** Up to `length` bytes from `offset` (headers of model files that may be gigabytes). */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** Size in bytes and whether it is a directory; null when the path does not exist. */
  stat(path: string): Promise<{ size: number; dir: boolean } | null>;
  /** Hex SHA-256 of a file's bytes (streamed: model files can be gigabytes). */
  sha256(path: string): Promise<string>;
}

export const nodeFs: CheckpointFs = {
  async mkdir(path) {
    await fsp.mkdir(path, { recursive: true });
  },
  async writeFile(path, chunks) {
    const fh = await fsp.open(path, 'wx');
    try {
      for (const c of chunks) {
        // Under a fault test each chunk goes in two writes, so a kill can leave half a file.
        const most = faultsActive ? Math.max(1, c.byteLength >> 1) : 1 << 30;
        let off = 0;
        while (off < c.byteLength) {
          off += (await fh.write(c, off, Math.min(c.byteLength - off, most))).bytesWritten;
          faultPoint(`write ${basename(path)}`);
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async readFile(path) {
    return fsp.readFile(path);
  },
  async readRange(path, offset, length) {
    const fh = await fsp.open(path, 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  },
  async rename(from, to) {
    await fsp.rename(from, to);
  },
  async rm(path) {
    await fsp.rm(path, { recursive: true, force: true });
  },
  async readdir(path) {
    return fsp.readdir(path);
  },
  async stat(path) {
    try {
      const s = await fsp.stat(path);
      return { size: s.size, dir: s.isDirectory() };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  },
  async sha256(path) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  },
};

export interface F32Entry {
  shape: number[];
  data: Float32Array;
}

/** Serialises named f32 tensors as a safetensors file (readable by the Python library too). */
export function encodeTensorFile(tensors: ReadonlyMap<string, F32Entry>, metadata: Record<string, string> = {}): Uint8Array[] {
  if (endianness() !== 'LE') throw new Error('checkpoint: big-endian hosts are not supported');
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.byteLength;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, bytes));
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the format pads the header to 8 bytes with spaces
  const head = new Uint8Array(8 + Buffer.byteLength(json));
  new DataView(head.buffer).setBigUint64(0, BigInt(head.length - 8), true);
  head.set(Buffer.from(json), 8);
  return [head, ...chunks];
}

/** Parses a file written by encodeTensorFile (or any F32 safetensors file); errors name `source`. */
export function decodeTensorFile(bytes: Uint8Array, source: string): { tensors: Map<string, F32Entry>; metadata: Record<string, string> } {
  const bad = (why: string): never => {
    throw new Error(`${source}: corrupt tensor file (${why})`);
  };
  if (bytes.length < 8) bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > bytes.length - 8) bad(`header length ${headerLen} exceeds the file (${bytes.length} bytes)`);
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString('utf8'));
  } catch (e) {
    return bad(`header is not JSON: ${(e as Error).message}`);
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, F32Entry>();
  let metadata: Record<string, string> = {};
  let end = 0;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    if (info.dtype !== 'F32') bad(`${name} has dtype ${String(info.dtype)}, only F32 is read here`);
    const shape = info.shape as number[];
    const offs = info.data_offsets as [number, number];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`${name} has a bad shape`);
    if (!Array.isArray(offs) || offs.length !== 2) bad(`${name} has no data_offsets`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (offs[1] - offs[0] !== n * 4 || offs[0] < 0 || dataStart + offs[1] > bytes.length) {
      bad(`${name}: data_offsets [${offs.join(',')}] do not fit shape [${shape.join(',')}] in ${bytes.length - dataStart} data bytes`);
    }
    // Copy: the file's buffer need not be 4-byte aligned at the tensor's offset.
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + offs[0], dataStart + offs[1]));
    tensors.set(name, { shape, data });
    end = Math.max(end, offs[1]);
  }
  if (dataStart + end !== bytes.length) bad(`${bytes.length - dataStart - end} trailing bytes after the last tensor`);
  return { tensors, metadata };
}

/** Names, dtypes and shapes of a safetensors file, reading only its header. Null if it is not one. */
export async function readTensorFileHeader(fs: CheckpointFs, path: string): Promise<Map<string, { dtype: string; shape: number[] }> | null> {
  try {
    const head = await fs.readRange(path, 0, 8);
    if (head.length < 8) return null;
    const len = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
    if (len > 100_000_000) return null;
    const header = JSON.parse(Buffer.from(await fs.readRange(path, 8, len)).toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
    delete header.__metadata__;
    return new Map(Object.entries(header).map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }]));
  } catch {
    return null;
  }
}
