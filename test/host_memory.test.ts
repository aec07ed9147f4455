// The caching host allocator: size classes bound the waste, a tensor that grows every step (a KV
// cache) reuses freed buffers instead of piling them up, and the cache is trimmed to the live peak.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HostAllocator, bucketBytes, type HostStorage } from '../src/backends/host_memory.js';

describe('host allocator', () => {
  it('size classes: 64-byte multiples, never smaller, at most 12.5% larger past 64 KiB', () => {
    for (let bytes = 1; bytes < 50_000_000; bytes = Math.ceil(bytes * 1.37) + 3) {
      const b = bucketBytes(bytes);
      assert.equal(b % 64, 0);
      assert.ok(b >= bytes, `${bytes} -> ${b}`);
      if (bytes > 65536) assert.ok(b <= bytes * 1.125 + 64, `${bytes} -> ${b}`);
      else assert.ok(b < bytes + 64 || b === 64);
    }
    assert.equal(bucketBytes(4 * 1000), 4032);
  });

  it('a buffer that grows by one row per step is served from the cache', () => {
    const a = new HostAllocator();
    const row = 12 * 64; // heads x headDim of a KV cache, one position
    let cache: HostStorage = a.alloc('f32', row);
    let fresh = 0;
    for (let t = 2; t <= 1024; t++) {
      const before = a.memory().cachedBytes;
      const next = a.alloc('f32', row * t); // the longer cache, written before the old one is freed
      if (a.memory().cachedBytes === before) fresh++;
      a.free(cache);
      cache = next;
    }
    const { liveBytes, cachedBytes } = a.memory();
    // Exact-size buckets would allocate 1023 times and cache every old buffer (~1.5 GB here, growing
    // with the square of the length). With classes at most one or two buffers per class stay cached:
    // a geometric series, so linear in the final size (~16x it).
    // Each size class (8 per doubling) allocates about twice: the old and new cache overlap once.
    assert.ok(fresh <= 2 * 8 * Math.log2(1024) + 10, `${fresh} fresh allocations`);
    assert.ok(cachedBytes <= 24 * liveBytes, `cached ${cachedBytes} vs live ${liveBytes}`);
  });

  it('trims cached buffers beyond the live peak', () => {
    const a = new HostAllocator(1 << 20);
    for (let i = 1; i <= 200; i++) a.free(a.alloc('f32', 4096 * i)); // 200 distinct sizes, one live at a time
    const { cachedBytes, liveBytes, liveCount } = a.memory();
    assert.equal(liveBytes, 0);
    assert.equal(liveCount, 0);
    assert.ok(cachedBytes <= Math.max(1 << 20, bucketBytes(4 * 4096 * 200)), `cached ${cachedBytes}`);
    a.emptyCache();
    assert.equal(a.memory().cachedBytes, 0);
  });
});
