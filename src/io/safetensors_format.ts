// The safetensors byte format without file access: dtypes, header parsing with full validation,
// header building in the Python library's layout, and exact F16/BF16/I64 conversions.

import { shortJson } from '../short_json.js';

/** The dtypes Loom reads and writes. Other dtypes of the spec are refused with a clear error. */
export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
}

/** A tensor's place in its file: absolute byte offset and length. */
export interface TensorEntry extends TensorInfo {
  byteOffset: number;
  byteLength: number;
}

export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

/** Order of the Rust library's `Dtype` enum: files are laid out by descending rank, then by name. */
const DTYPE_RANK: Readonly<Record<SafetensorsDType, number>> = { F16: 7, BF16: 8, I32: 9, F32: 11, I64: 13 };

/** Dtypes of the format that Loom does not read (so the error can say "unsupported", not "unknown"). */
const OTHER_SPEC_DTYPES = new Set(['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'I16', 'U16', 'U32', 'F64', 'U64', 'C64']);

/** The Python library refuses headers over 100 MB; so do we (a 2^60 length is corruption, not a model). */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(readonly file: string, message: string, readonly tensor?: string) {
    super(`${file}: ${tensor === undefined ? '' : `tensor "${tensor}": `}${message}`);
    this.name = 'SafetensorsError';
  }
}

export function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Reads the 8-byte little-endian header length and checks it against the file size. */
export function headerLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8) throw new SafetensorsError(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(file, `header length ${n} is implausible (limit ${MAX_HEADER_BYTES} bytes): not a safetensors file, or corrupt`);
  }
  if (Number(n) + 8 > fileSize) {
    throw new SafetensorsError(file, `header length ${n} exceeds the file (${fileSize} bytes): truncated or corrupt`);
  }
  return Number(n);
}

export interface ParsedHeader {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/**
 * Parses and validates a header. `dataStart` is 8 + header length, `fileSize` the whole file: every
 * tensor must lie in [dataStart, fileSize), byte count = numel * itemsize, and the tensors must tile
 * the data section exactly (no overlap, no gap, no trailing bytes), as the Python library demands.
 */
export function parseHeader(file: string, headerBytes: Uint8Array, dataStart: number, fileSize: number): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `header is not JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(file, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const raw = json.__metadata__;
  if (raw !== undefined && raw !== null) {
    if (!isPlainObject(raw)) throw new SafetensorsError(file, '__metadata__ is not an object');
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__.${k} is not a string`);
      metadata[k] = v;
    }
  }

  const dataBytes = fileSize - dataStart;
  const list: { entry: TensorEntry; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    if (!isPlainObject(info)) throw new SafetensorsError(file, 'entry is not an object', name);
    const dtype = info.dtype;
    if (!isDType(dtype)) {
      const what = typeof dtype === 'string' && OTHER_SPEC_DTYPES.has(dtype) ? 'unsupported' : 'unknown';
      throw new SafetensorsError(file, `${what} dtype ${shortJson(dtype)} (Loom reads F32, F16, BF16, I64, I32)`, name);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new SafetensorsError(file, `shape ${shortJson(shape)} is not a list of non-negative integers`, name);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      throw new SafetensorsError(file, `data_offsets ${shortJson(offsets)} is not a pair of non-negative integers`, name);
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const count = numel(dims);
    const bytes = count * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(bytes)) throw new SafetensorsError(file, `shape ${shortJson(dims)} is too large`, name);
    if (end < begin) throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataBytes) {
      throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes)`, name);
    }
    if (end - begin !== bytes) {
      throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} ${shortJson(dims)} needs ${bytes}`, name);
    }
    list.push({ entry: { name, dtype, shape: dims, byteOffset: dataStart + begin, byteLength: bytes }, begin, end });
  }

  // Tile check: sorted by offset, each tensor starts where the previous one ended.
  list.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = '';
  for (const { entry, begin, end } of list) {
    if (begin < at) throw new SafetensorsError(file, `data overlaps tensor "${prev}" (starts at ${begin}, "${prev}" ends at ${at})`, entry.name);
    if (begin > at) throw new SafetensorsError(file, `data starts at ${begin}, leaving a gap after byte ${at}`, entry.name);
    at = end;
    prev = entry.name;
  }
  if (at !== dataBytes) {
    throw new SafetensorsError(file, `tensors cover ${at} of the ${dataBytes} data bytes: trailing bytes after the last tensor`);
  }
  const tensors = new Map<string, TensorEntry>();
  for (const { entry } of list) tensors.set(entry.name, entry);
  return { tensors, metadata };
}

/** A tensor about to be written: its bytes are produced by `encodeTensor` one at a time. */
export interface HeaderTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
}

/**
 * Builds the header exactly as the Python library does: tensors sorted by dtype rank (descending)
 * then name, `__metadata__` first, compact JSON, padded with spaces to a multiple of 8 bytes.
 * Returns the full prefix (length + header) and the order in which to write the tensors' bytes.
 */
export function buildHeader(tensors: readonly HeaderTensor[], metadata: Record<string, string> | undefined): { prefix: Uint8Array; order: number[] } {
  const order = tensors.map((_, i) => i);
  order.sort((a, b) => {
    const ta = tensors[a]!;
    const tb = tensors[b]!;
    const r = DTYPE_RANK[tb.dtype] - DTYPE_RANK[ta.dtype];
    return r !== 0 ? r : ta.name < tb.name ? -1 : ta.name > tb.name ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const sorted: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) sorted[k] = metadata[k]!;
    header.__metadata__ = sorted;
  }
  let offset = 0;
  for (const i of order) {
    const t = tensors[i]!;
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);
  return { prefix, order };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ------------------------------------------------------------------ element conversions

let f16Table: Uint32Array | undefined;

/** f32 bit patterns of all 65536 halves (exact: every half is a float; NaN payloads kept). */
function halfTable(): Uint32Array {
  if (f16Table !== undefined) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) t[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    else if (exp !== 0) t[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    else {
      f[0] = mant * 2 ** -24; // subnormal (or zero): exact in f32
      t[h] = (sign | u[0]!) >>> 0;
    }
  }
  f16Table = t;
  return t;
}

/** Widens halves (as raw u16) into f32 bit patterns. */
export function f16ToF32Bits(src: Uint16Array, dst: Uint32Array): void {
  const t = halfTable();
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]!]!;
}

/** Widens bfloat16 (raw u16) into f32 bit patterns: the top half of the float. */
export function bf16ToF32Bits(src: Uint16Array, dst: Uint32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = src[i]! << 16;
}

/** One f32 bit pattern to half, round to nearest even, overflow to inf, NaN -> 0x7e00 (c10::Half). */
export function f32BitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 112; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    const h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (rest > half || (rest === half && (h & 1) === 1) ? h + 1 : h);
  }
  const h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to inf: the right result either way.
  return rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h;
}

/** One f32 bit pattern to bfloat16, round to nearest even, NaN -> 0x7fc0 (c10::BFloat16). */
export function f32BitsToBf16(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return 0x7fc0;
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** Encodes a tensor's elements as `dtype` bytes (little-endian host). Integers must be integral. */
export function encodeTensor(data: Float32Array | Int32Array | BigInt64Array, dtype: SafetensorsDType): Uint8Array | string {
  const n = data.length;
  const asBytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (data instanceof BigInt64Array) return dtype === 'I64' ? asBytes(data) : 'BigInt64Array data can only be stored as I64';
  if (dtype === 'F32') return asBytes(data instanceof Float32Array ? data : Float32Array.from(data));
  if (dtype === 'F16' || dtype === 'BF16') {
    const bits = data instanceof Float32Array ? new Uint32Array(data.buffer, data.byteOffset, n) : new Uint32Array(Float32Array.from(data).buffer);
    const out = new Uint16Array(n);
    const conv = dtype === 'F16' ? f32BitsToF16 : f32BitsToBf16;
    for (let i = 0; i < n; i++) out[i] = conv(bits[i]!);
    return asBytes(out);
  }
  if (data instanceof Float32Array) {
    for (let i = 0; i < n; i++) {
      const v = data[i]!;
      const ok = dtype === 'I32' ? Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 : Number.isSafeInteger(v);
      if (!ok) {
        return `element ${i} (${v}) is not ${dtype === 'I32' ? 'an int32' : 'an integer within 2^53'}`;
      }
    }
  }
  if (dtype === 'I32') return asBytes(data instanceof Int32Array ? data : Int32Array.from(data));
  const out = new Int32Array(2 * n); // I64: low word, then high word (every value is within 2^53)
  for (let i = 0; i < n; i++) {
    const v = data[i]!;
    const hi = Math.floor(v / 4294967296);
    out[2 * i] = v - hi * 4294967296;
    out[2 * i + 1] = hi;
  }
  return asBytes(out);
}
