// Host memory for backends whose storages live in ordinary ArrayBuffers (native CPU, TS reference).
// A size-bucketed caching allocator: a training step frees and re-allocates the same sizes every
// step, so freed buffers are kept per exact byte size and handed back out instead of allocating again.

import type { DType, HostArray, MemoryInfo, Storage } from './backend.js';
import { DTYPE_BYTES } from './backend.js';

/** A storage backed by a host typed array: `data` views exactly numel elements of a bucket-sized buffer. */
export class HostStorage implements Storage {
  constructor(
    readonly dtype: DType,
    readonly numel: number,
    /** The whole backing buffer; its byte length is the bucket size, >= numel * bytes. */
    readonly buffer: ArrayBuffer,
    readonly data: HostArray,
  ) {}
  freed = false;
}

// Buffers are 64-byte aligned in size so that vector kernels can run whole lanes at the tail.
const ALIGN = 64;

function viewOf(dtype: DType, buffer: ArrayBuffer, numel: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer, 0, numel);
    case 'i32':
      return new Int32Array(buffer, 0, numel);
    case 'bf16':
      return new Uint16Array(buffer, 0, numel);
  }
}

/**
 * The buffer size used for a request: 64-byte steps up to 64 KiB, then 8 size classes per power of
 * two (at most 12.5% over). Classes matter for tensors that grow a little every step (a KV cache one
 * position longer per generated token): with exact sizes every step would allocate anew and the
 * cache would fill with buffers never asked for again.
 */
export function bucketBytes(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= 65536) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/** Cached (freed) bytes are trimmed beyond max(this, the peak of live bytes). */
const MIN_CACHE_LIMIT = 256 * 1024 * 1024;

/** New buffers at least this large are offered to `onNewBuffer` (huge-page advice). */
const LARGE_BUFFER = 4 * 1024 * 1024;

/** Hands out reused buffers without clearing them: every kernel writes all of its outputs. */
export class HostAllocator {
  /** Called with every new buffer of LARGE_BUFFER bytes or more, before anything touches it. */
  onNewBuffer: ((buffer: ArrayBuffer) => void) | null = null;
  private readonly cache = new Map<number, ArrayBuffer[]>();
  private live = 0;
  private peakLive = 0;
  /** Peak since resetPeak(); peakLive itself keeps sizing the cache. */
  private peakSinceReset = 0;
  private liveCount = 0;
  private cached = 0;

  /** minCacheLimit: cached bytes are trimmed beyond max(minCacheLimit, peak live bytes). */
  constructor(private readonly minCacheLimit = MIN_CACHE_LIMIT) {}

  alloc(dtype: DType, numel: number): HostStorage {
    if (!Number.isInteger(numel) || numel < 0) throw new Error(`alloc: invalid element count ${numel}`);
    const bytes = bucketBytes(numel * DTYPE_BYTES[dtype]);
    const bucket = this.cache.get(bytes);
    let buffer = bucket?.pop();
    if (buffer) this.cached -= bytes;
    else {
      buffer = new ArrayBuffer(bytes);
      if (bytes >= LARGE_BUFFER) this.onNewBuffer?.(buffer);
    }
    this.live += bytes;
    this.peakLive = Math.max(this.peakLive, this.live);
    this.peakSinceReset = Math.max(this.peakSinceReset, this.live);
    this.liveCount += 1;
    return new HostStorage(dtype, numel, buffer, viewOf(dtype, buffer, numel));
  }

  free(s: HostStorage): void {
    if (s.freed) throw new Error('free: storage already freed');
    s.freed = true;
    const bytes = s.buffer.byteLength;
    this.live -= bytes;
    this.liveCount -= 1;
    let bucket = this.cache.get(bytes);
    if (!bucket) this.cache.set(bytes, (bucket = []));
    bucket.push(s.buffer);
    this.cached += bytes;
    this.trim(Math.max(this.minCacheLimit, this.peakLive));
  }

  /** Drops cached buffers, oldest size class first, until at most `limit` bytes stay cached. */
  private trim(limit: number): void {
    if (this.cached <= limit) return;
    for (const [bytes, bucket] of this.cache) {
      while (bucket.length > 0 && this.cached > limit) {
        bucket.pop();
        this.cached -= bytes;
      }
      if (bucket.length === 0) this.cache.delete(bytes);
      if (this.cached <= limit) return;
    }
  }

  memory(): MemoryInfo {
    return { liveBytes: this.live, liveCount: this.liveCount, cachedBytes: this.cached, peakLiveBytes: this.peakSinceReset };
  }

  resetPeak(): void {
    this.peakSinceReset = this.live;
  }

  emptyCache(): void {
    this.cache.clear();
    this.cached = 0;
  }
}

/** Copies a host view to a fresh array of the same type (what readSync hands out). */
export function copyHost(data: HostArray): HostArray {
  return data.slice() as HostArray;
}

/** Writes `src` into storage `s` at `offset`, checking the type and bounds. */
export function writeHost(s: HostStorage, src: HostArray, offset = 0): void {
  if (s.freed) throw new Error('write: storage was freed');
  if (Object.getPrototypeOf(src) !== Object.getPrototypeOf(s.data)) {
    throw new Error(`write: ${src.constructor.name} does not match storage dtype ${s.dtype}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + src.length > s.numel) {
    throw new Error(`write: ${src.length} elements at offset ${offset} exceed storage of ${s.numel}`);
  }
  (s.data as Float32Array).set(src as Float32Array, offset);
}

/** The storage as a live HostStorage, or an error naming the call (a foreign or freed storage). */
export function host(s: Storage, what: string): HostStorage {
  if (!(s instanceof HostStorage)) throw new Error(`${what}: storage is not a host storage of this backend`);
  if (s.freed) throw new Error(`${what}: storage was freed`);
  return s;
}

/**
 * Memory management shared by the backends whose storages are host ArrayBuffers (native CPU and the
 * TypeScript reference): allocation through one HostAllocator, and host transfers that are copies.
 */
export abstract class HostBackend {
  protected readonly allocator = new HostAllocator();

  alloc(dtype: DType, numel: number): HostStorage {
    return this.allocator.alloc(dtype, numel);
  }
  free(s: Storage): void {
    this.allocator.free(host(s, 'free'));
  }
  write(s: Storage, data: HostArray, offset = 0): void {
    writeHost(host(s, 'write'), data, offset);
  }
  readSync(s: Storage): HostArray {
    return copyHost(host(s, 'read').data);
  }
  read(s: Storage): Promise<HostArray> {
    try {
      return Promise.resolve(this.readSync(s));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }
  memory(): MemoryInfo {
    return this.allocator.memory();
  }
  emptyCache(): void {
    this.allocator.emptyCache();
  }
  resetPeakMemory(): void {
    this.allocator.resetPeak();
  }
  hostView(s: Storage): HostArray {
    return host(s, 'hostView').data;
  }
}
