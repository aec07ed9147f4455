// Safetensors: a file written by Python read back exactly and rewritten byte for byte, round trips
// of every dtype, exact F16/BF16 rounding, sharded checkpoints, metadata. Bad input: safetensors_errors.test.ts.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  openCheckpoint, openSafetensors, writeSafetensors, writeShardedSafetensors,
} from '../src/io/safetensors.js';
import type { TensorToWrite } from '../src/io/safetensors.js';
import { bf16ToF32Bits, f16ToF32Bits, f32BitsToBf16, f32BitsToF16 } from '../src/io/safetensors_format.js';
import { tempDir } from './data_fixtures.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'safetensors');
const PY_FILE = join(FIXTURES, 'python_dtypes.safetensors');

interface PyExpected {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
  sources: { f16: (number | string)[]; bf16: (number | string)[] };
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'python_dtypes.json'), 'utf8')) as PyExpected;

const num = (v: number | string): number => (typeof v === 'number' ? v : v === 'nan' ? NaN : v === 'inf' ? Infinity : -Infinity);
const f32 = (vs: (number | string)[]): Float32Array => Float32Array.from(vs.map(num));
const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

test('a file written by Python: names, shapes, metadata and every value (F16/BF16 widened exactly)', async () => {
  await using file = await openSafetensors(PY_FILE);
  assert.deepEqual(file.metadata, expected.metadata);
  assert.deepEqual([...file.tensors.keys()].sort(), Object.keys(expected.tensors).sort());
  for (const [name, want] of Object.entries(expected.tensors)) {
    const info = file.tensors.get(name)!;
    assert.equal(info.dtype, want.dtype, name);
    assert.deepEqual(info.shape, want.shape, name);
    const got = await file.readF32(name);
    const ref = f32(want.values);
    if (want.dtype === 'I64') ref.set(want.values.map((v) => Math.fround(v as number))); // 2^53-1 rounds in f32
    assert.deepEqual(bits(got), bits(ref), `${name}: bit-identical`); // -0 included; the NaNs are canonical
  }
  assert.deepEqual([...await file.readI32('i32')], expected.tensors.i32!.values);
  // 2^31 does not fit an int32: narrowing says which element.
  await assert.rejects(file.readI32('i64'), /python_dtypes\.safetensors: tensor "i64": I64 element 3 \(2147483648\) is outside the int32 range/);
  assert.equal((await file.readRaw('f16')).length, 2 * expected.sources.f16.length);
});

test('rewriting the Python file from its float32 sources gives the same bytes (layout, order, F16/BF16 rounding)', async () => {
  using tmp = tempDir('loom-st-');
  const t = expected.tensors;
  const i64 = BigInt64Array.from((t.i64!.values as number[]).map((v) => BigInt(v)));
  const tensors: TensorToWrite[] = [
    { name: 'cube', shape: t.cube!.shape, data: f32(t.cube!.values) },
    { name: 'bf16', shape: t.bf16!.shape, data: f32(expected.sources.bf16), dtype: 'BF16' },
    { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
    { name: 'f16', shape: t.f16!.shape, data: f32(expected.sources.f16), dtype: 'F16' },
    { name: 'f32', shape: t.f32!.shape, data: f32(t.f32!.values) },
    { name: 'i32', shape: t.i32!.shape, data: Int32Array.from(t.i32!.values as number[]) },
    { name: 'i64', shape: t.i64!.shape, data: i64 },
    { name: 'scalar', shape: [], data: () => Float32Array.of(1.25) },
  ];
  const out = join(tmp.dir, 'again.safetensors');
  await writeSafetensors(out, tensors, expected.metadata);
  assert.ok(readFileSync(out).equals(readFileSync(PY_FILE)), 'byte-identical to the Python writer');
});

/** Exact reference rounding of a float32 to `mant` fraction bits, exponent from `minExp` (subnormals below). */
function roundRef(x: number, mant: number, minExp: number, maxFinite: number): number {
  if (Number.isNaN(x) || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const e = Math.max(minExp, Math.floor(Math.log2(a || 1)));
  const ulp = 2 ** (e - mant);
  let q = a / ulp;
  const fl = Math.floor(q);
  q = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  let r = q * ulp;
  if (r > maxFinite) r = Infinity;
  return x < 0 || Object.is(x, -0) ? -r : r;
}

test('F16 and BF16 conversions: exact widening, round-to-nearest-even narrowing, all 2^16 patterns', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const wide = new Uint32Array(65536);
  const f = new Float32Array(wide.buffer);
  for (const [widen, narrow] of [[f16ToF32Bits, f32BitsToF16], [bf16ToF32Bits, f32BitsToBf16]] as const) {
    widen(all, wide);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(f[h])) continue;
      assert.equal(narrow(wide[h]!), h, `pattern ${h.toString(16)} survives widen + narrow`);
    }
  }
  // Random float32 bit patterns against an exact reference (log2 of a float32 is exact enough here).
  const probe = new Float32Array(1);
  const u = new Uint32Array(probe.buffer);
  let seed = 12345;
  for (let i = 0; i < 20000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    u[0] = (seed ^ (i << 7)) >>> 0;
    const x = probe[0]!;
    if (Number.isNaN(x)) continue;
    const pair = new Uint16Array([f32BitsToF16(u[0]!), f32BitsToBf16(u[0]!)]);
    const back = new Uint32Array(2);
    f16ToF32Bits(pair.subarray(0, 1), back.subarray(0, 1));
    bf16ToF32Bits(pair.subarray(1, 2), back.subarray(1, 2));
    const got = new Float32Array(back.buffer);
    assert.ok(Object.is(got[0], roundRef(x, 10, -14, 65504)), `F16 of ${x}: ${got[0]}`);
    assert.ok(Object.is(got[1], Math.fround(roundRef(x, 7, -126, 3.3895313892515355e38))), `BF16 of ${x}: ${got[1]}`);
  }
  assert.equal(f32BitsToF16(0x7fc00000), 0x7e00); // NaN stays NaN
  assert.equal(f32BitsToBf16(0xffc00000), 0x7fc0);
});

test('round trip of every dtype, lazy data, shapes [] and [0]', async () => {
  using tmp = tempDir('loom-st-');
  const path = join(tmp.dir, 'model.safetensors');
  const x = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
  const ints = Int32Array.from({ length: 12 }, (_, i) => (i - 6) * 123456789);
  await writeSafetensors(path, [
    { name: 'a.f32', shape: [3, 100], data: x },
    { name: 'a.f16', shape: [300], data: x, dtype: 'F16' },
    { name: 'a.bf16', shape: [300], data: x, dtype: 'BF16' },
    { name: 'b.i32', shape: [2, 6], data: ints },
    { name: 'b.i64', shape: [12], data: ints, dtype: 'I64' },
    { name: 'c.i64', shape: [2], data: Float32Array.of(-3, 2 ** 40), dtype: 'I64' },
    { name: 'd.lazy', shape: [2, 2], data: async () => Float32Array.of(1, 2, 3, 4) },
    { name: 'e.scalar', shape: [], data: Float32Array.of(7) },
    { name: 'e.empty', shape: [0], data: new Float32Array(0) },
  ]);
  await using ck = await openCheckpoint(tmp.dir);
  assert.deepEqual(ck.metadata, { format: 'pt' });
  assert.deepEqual(await ck.readF32('a.f32'), x);
  const f16 = await ck.readF32('a.f16');
  const bf16 = await ck.readF32('a.bf16');
  for (let i = 0; i < x.length; i++) {
    assert.equal(f16[i], roundRef(x[i]!, 10, -14, 65504), `f16 ${i}`);
    assert.equal(bf16[i], Math.fround(roundRef(x[i]!, 7, -126, 3.4e38)), `bf16 ${i}`);
  }
  assert.deepEqual(await ck.readI32('b.i32'), ints);
  assert.deepEqual(await ck.readI32('b.i64'), ints);
  assert.deepEqual([...await ck.readF32('b.i64')], [...ints].map(Math.fround));
  assert.deepEqual([...await ck.readF32('c.i64')], [-3, 2 ** 40]);
  assert.deepEqual([...await ck.readF32('d.lazy')], [1, 2, 3, 4]);
  assert.deepEqual([...await ck.readF32('e.scalar')], [7]);
  assert.deepEqual(ck.tensors.get('e.scalar')!.shape, []);
  assert.equal((await ck.readF32('e.empty')).length, 0);
  assert.deepEqual(readdirSync(tmp.dir), ['model.safetensors'], 'no temp file left behind');
});

test('metadata: default {format: pt}, custom values, {} writes none', async () => {
  using tmp = tempDir('loom-st-');
  const one = [{ name: 'w', shape: [1], data: Float32Array.of(1) }];
  await writeSafetensors(join(tmp.dir, 'a.safetensors'), one, { format: 'pt', note: 'héllo "quoted"' });
  await writeSafetensors(join(tmp.dir, 'b.safetensors'), one, {});
  await using a = await openSafetensors(join(tmp.dir, 'a.safetensors'));
  await using b = await openSafetensors(join(tmp.dir, 'b.safetensors'));
  assert.deepEqual(a.metadata, { format: 'pt', note: 'héllo "quoted"' });
  assert.deepEqual(b.metadata, {});
  assert.ok(!readFileSync(join(tmp.dir, 'b.safetensors')).includes('__metadata__'));
  const header = readFileSync(join(tmp.dir, 'a.safetensors'));
  assert.equal(Number(header.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
});

test('sharded: transformers file names and index, greedy shards, oversize tensor alone, reload', async () => {
  using tmp = tempDir('loom-st-');
  const mk = (name: string, n: number, k: number): TensorToWrite => ({ name, shape: [n], data: Float32Array.from({ length: n }, (_, i) => k + i / 1000) });
  const tensors = [mk('layers.0.w', 100, 1), mk('layers.0.b', 100, 2), mk('embed', 400, 3), mk('layers.1.w', 100, 4), mk('norm', 50, 5)];
  writeFileSync(join(tmp.dir, 'model.safetensors'), 'stale single file');
  writeFileSync(join(tmp.dir, 'model-00009-of-00009.safetensors'), 'stale shard');
  const res = await writeShardedSafetensors(tmp.dir, tensors, { maxShardBytes: 800 });
  // As huggingface_hub splits: embed (1600 B > max) becomes a shard at once, 400+400 fill the next, then 400+200.
  assert.deepEqual(res.files, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
  assert.equal(res.totalBytes, 3000);
  assert.deepEqual(readdirSync(tmp.dir).sort(), [...res.files, 'model.safetensors.index.json'].sort(), 'stale files removed');
  const index = JSON.parse(readFileSync(join(tmp.dir, 'model.safetensors.index.json'), 'utf8'));
  assert.deepEqual(index, {
    metadata: { total_size: 3000 },
    weight_map: {
      embed: 'model-00001-of-00003.safetensors', 'layers.0.b': 'model-00002-of-00003.safetensors', 'layers.0.w': 'model-00002-of-00003.safetensors',
      'layers.1.w': 'model-00003-of-00003.safetensors', norm: 'model-00003-of-00003.safetensors',
    },
  });
  assert.deepEqual(Object.keys(index.weight_map), Object.keys(index.weight_map).sort());
  {
    await using ck = await openCheckpoint(tmp.dir);
    assert.equal(ck.files.length, 3);
    assert.deepEqual(ck.metadata, { format: 'pt' });
    assert.deepEqual([...ck.tensors.keys()], Object.keys(index.weight_map));
    for (const t of tensors) assert.deepEqual(await ck.readF32(t.name), t.data, t.name);
  }
  // Saving again small enough for one file: model.safetensors, and the old shards and index go.
  const one = await writeShardedSafetensors(tmp.dir, tensors.slice(0, 2));
  assert.deepEqual(one, { files: ['model.safetensors'], index: null, totalBytes: 800 });
  assert.deepEqual(readdirSync(tmp.dir), ['model.safetensors']);
  await using ck = await openCheckpoint(tmp.dir);
  assert.deepEqual([...ck.tensors.keys()].sort(), ['layers.0.b', 'layers.0.w']);
});

test('openCheckpoint: a path to a file, a symlink inside the folder, the hub cache layout', async () => {
  using tmp = tempDir('loom-st-');
  const { symlinkSync } = await import('node:fs');
  const snap = join(tmp.dir, 'models--x', 'snapshots', 'abc123');
  const blobs = join(tmp.dir, 'models--x', 'blobs');
  mkdirSync(snap, { recursive: true });
  mkdirSync(blobs, { recursive: true });
  await writeSafetensors(join(blobs, 'sha256'), [{ name: 'w', shape: [2], data: Float32Array.of(1, 2) }]);
  symlinkSync('../../blobs/sha256', join(snap, 'model.safetensors'));
  await using viaCache = await openCheckpoint(snap);
  assert.deepEqual([...await viaCache.readF32('w')], [1, 2]);
  await using direct = await openCheckpoint(join(blobs, 'sha256'));
  assert.deepEqual([...direct.tensors.keys()], ['w']);
});

test('readF32 into a caller-owned array: exact size required, F32 and converted dtypes, offset views', async () => {
  using tmp = tempDir('loom-st-into-');
  const dir = tmp.dir;
  const path = join(dir, 'model.safetensors');
  const values = Float32Array.from({ length: 10 }, (_, i) => i * 0.5 - 2);
  await writeSafetensors(path, [
    { name: 'a', shape: [2, 5], data: values },
    { name: 'h', shape: [10], data: values, dtype: 'F16' },
  ]);
  const ckpt = await openCheckpoint(dir);
  // A view at an offset inside a larger buffer, like a pooled storage.
  const backing = new Float32Array(16).fill(99);
  const view = new Float32Array(backing.buffer, 8, 10);
  assert.equal(await ckpt.readF32('a', view), view);
  assert.deepEqual([...view], [...values]);
  assert.deepEqual([backing[0], backing[1], backing[12]], [99, 99, 99]);
  await ckpt.readF32('h', view);
  assert.deepEqual([...view], [...values]);
  await assert.rejects(ckpt.readF32('a', new Float32Array(9)), /destination holds 9 values, the tensor 10/);
  await ckpt.close();
});
