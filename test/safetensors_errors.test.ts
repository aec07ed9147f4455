// Safetensors bad input: every corruption of a file or a sharded index is a clear error naming the
// file (and the tensor), never a crash or an out-of-bounds read; bad writes are refused up front.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCheckpoint, openSafetensors, writeSafetensors, writeShardedSafetensors } from '../src/io/safetensors.js';
import type { TensorToWrite } from '../src/io/safetensors.js';
import { tempDir } from './data_fixtures.js';

/** A raw file: 8-byte length (the header's, unless given), header text, then `data` bytes. */
function raw(path: string, header: unknown, data: number | Uint8Array = 0, length?: bigint): string {
  const text = header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(text.length));
  writeFileSync(path, Buffer.concat([prefix, text, typeof data === 'number' ? Buffer.alloc(data) : data]));
  return path;
}

const f32 = (shape: number[], begin: number, end: number): unknown => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

const CASES: [string, unknown, number | Uint8Array, bigint | undefined, RegExp][] = [
  ['header length 2^60', {}, 0, 2n ** 60n, /header length 1152921504606846976 is implausible/],
  ['header length past the end', { w: f32([1], 0, 4) }, 4, 10_000n, /header length 10000 exceeds the file \(\d+ bytes\): truncated/],
  ['header not JSON', '{"w": {"dtype": "F32",', 0, undefined, /header is not JSON/],
  ['header not an object', '[1, 2, 3]', 0, undefined, /header is not a JSON object/],
  ['header not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 0, undefined, /header is not valid UTF-8/],
  ['unknown dtype', { w: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, 4, undefined, /tensor "w": unknown dtype "Q7"/],
  ['unsupported dtype', { w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8, undefined, /tensor "w": unsupported dtype "F64" \(Loom reads F32, F16, BF16, I64, I32\)/],
  ['negative dimension', { w: f32([-1, 4], 0, 16) }, 16, undefined, /tensor "w": shape \[-1,4\] is not a list of non-negative integers/],
  ['fractional dimension', { w: f32([1.5], 0, 4) }, 4, undefined, /tensor "w": shape \[1.5\]/],
  ['shape/offsets mismatch', { w: f32([2, 3], 0, 20) }, 20, undefined, /tensor "w": data_offsets \[0, 20\] hold 20 bytes, but F32 \[2,3\] needs 24/],
  ['offsets past the data', { w: f32([4], 0, 16) }, 8, undefined, /tensor "w": data_offsets \[0, 16\] run past the end of the data \(8 bytes\)/],
  ['offsets reversed', { w: f32([0], 8, 4) }, 8, undefined, /tensor "w": data_offsets \[8, 4\] end before they begin/],
  ['offsets not numbers', { w: { dtype: 'F32', shape: [1], data_offsets: ['0', 4] } }, 4, undefined, /tensor "w": data_offsets \["0",4\] is not a pair/],
  ['overlap', { a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12, undefined, /tensor "b": data overlaps tensor "a"/],
  ['duplicate range', { a: f32([2], 0, 8), b: f32([2], 0, 8) }, 8, undefined, /tensor "b": data overlaps tensor "a"/],
  ['gap', { a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12, undefined, /tensor "b": data starts at 8, leaving a gap after byte 4/],
  ['trailing bytes', { a: f32([1], 0, 4) }, 12, undefined, /tensors cover 4 of the 12 data bytes/],
  ['huge shape', { w: f32([2 ** 40, 2 ** 40], 0, 4) }, 4, undefined, /tensor "w": shape \[1099511627776,1099511627776\] is too large/],
  ['metadata not strings', { __metadata__: { format: 1 } }, 0, undefined, /__metadata__.format is not a string/],
  ['entry not an object', { w: 5 }, 0, undefined, /tensor "w": entry is not an object/],
];

test('corrupt files: each a SafetensorsError naming the file and the tensor', async () => {
  using tmp = tempDir('loom-st-bad-');
  for (const [what, header, data, length, message] of CASES) {
    const path = raw(join(tmp.dir, `${what.replace(/\W+/g, '_')}.safetensors`), header, data, length);
    await assert.rejects(openSafetensors(path), (e: Error) => {
      assert.equal(e.name, 'SafetensorsError', what);
      assert.ok(e.message.startsWith(path), `${what}: names the file: ${e.message}`);
      assert.match(e.message, message, what);
      return true;
    });
  }
  writeFileSync(join(tmp.dir, 'tiny.safetensors'), Buffer.from([1, 2, 3]));
  await assert.rejects(openSafetensors(join(tmp.dir, 'tiny.safetensors')), /tiny\.safetensors: file is 3 bytes, shorter than the 8-byte header length/);
  await assert.rejects(openSafetensors(join(tmp.dir, 'absent.safetensors')), /absent\.safetensors: cannot open \(ENOENT\)/);
  await assert.rejects(openSafetensors(tmp.dir), /not a regular file|EISDIR/);
});

test('reads: unknown tensor, read after close, I64 beyond 2^53, integer read of a float', async () => {
  using tmp = tempDir('loom-st-bad-');
  const big = new Uint8Array(16);
  new DataView(big.buffer).setBigInt64(0, 2n ** 53n, true);
  new DataView(big.buffer).setBigInt64(8, -(2n ** 60n), true);
  const path = raw(join(tmp.dir, 'ints.safetensors'), { ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] }, w: f32([0], 16, 16) }, big);
  const file = await openSafetensors(path);
  await assert.rejects(file.readF32('ids'), /ints\.safetensors: tensor "ids": I64 element 0 \(9007199254740992\) is outside \+-2\^53/);
  await assert.rejects(file.readI32('ids'), /tensor "ids": I64 element 0 \(9007199254740992\) is outside the int32 range/);
  await assert.rejects(file.readI32('w'), /tensor "w": is F32, not an integer tensor/);
  await assert.rejects(file.readF32('nope'), /ints\.safetensors: tensor "nope": no such tensor/);
  await file.close();
  await assert.rejects(file.readF32('w'), /tensor "w": read after close\(\)/);
});

/** A sharded folder whose index maps each tensor to the given file name. */
async function sharded(dir: string, weightMap: Record<string, string>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model-00001-of-00001.safetensors'), [{ name: 'a', shape: [1], data: Float32Array.of(1) }]);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 4 }, weight_map: weightMap }));
}

test('sharded index: missing shard, tensor not in its shard, names leaving the folder, escaping symlinks', async () => {
  using tmp = tempDir('loom-st-bad-');
  const outside = join(tmp.dir, 'outside.safetensors');
  await writeSafetensors(outside, [{ name: 'b', shape: [1], data: Float32Array.of(2) }]);
  const cases: [string, Record<string, string>, RegExp][] = [
    ['missing', { a: 'model-00001-of-00001.safetensors', b: 'model-00002-of-00002.safetensors' },
      /index\.json: tensor "b" is in shard "model-00002-of-00002\.safetensors": file .*model-00002-of-00002\.safetensors is missing/],
    ['absent_tensor', { a: 'model-00001-of-00001.safetensors', zz: 'model-00001-of-00001.safetensors' },
      /index\.json: tensor "zz" should be in .*model-00001-of-00001\.safetensors, which does not hold it/],
    ['dotdot', { b: '../outside.safetensors' }, /tensor "b" is in shard "\.\.\/outside\.safetensors": refusing a file name that is absolute or leaves the model folder/],
    ['absolute', { b: outside }, /refusing a file name that is absolute/],
    ['backslash', { b: '..\\outside.safetensors' }, /refusing a file name/],
  ];
  for (const [name, map, message] of cases) {
    const dir = join(tmp.dir, name);
    await sharded(dir, map);
    await assert.rejects(openCheckpoint(dir), message, name);
  }
  const linked = join(tmp.dir, 'linked');
  await sharded(linked, { a: 'model-00001-of-00001.safetensors', b: 'evil.safetensors' });
  symlinkSync(outside, join(linked, 'evil.safetensors'));
  await assert.rejects(openCheckpoint(linked), /evil\.safetensors resolves to .*outside\.safetensors, outside the model folder; refusing it/);

  const single = join(tmp.dir, 'single');
  mkdirSync(single);
  symlinkSync(outside, join(single, 'model.safetensors'));
  await assert.rejects(openCheckpoint(single), /outside the model folder; refusing it/);

  const badIndex = join(tmp.dir, 'bad_index');
  mkdirSync(badIndex);
  writeFileSync(join(badIndex, 'model.safetensors.index.json'), '{"weight_map": ');
  await assert.rejects(openCheckpoint(badIndex), /model\.safetensors\.index\.json: not valid JSON/);
  writeFileSync(join(badIndex, 'model.safetensors.index.json'), '{"metadata": {}}');
  await assert.rejects(openCheckpoint(badIndex), /index\.json: no "weight_map" object/);

  const ok = join(tmp.dir, 'ok');
  await sharded(ok, { a: 'model-00001-of-00001.safetensors' });
  await using ck = await openCheckpoint(ok);
  assert.deepEqual([...await ck.readF32('a')], [1]);
});

test('folders without weights, and pytorch_model.bin only', async () => {
  using tmp = tempDir('loom-st-bad-');
  await assert.rejects(openCheckpoint(join(tmp.dir, 'nope')), /nope: no such file or folder/);
  await assert.rejects(openCheckpoint(tmp.dir), /no model\.safetensors or model\.safetensors\.index\.json$/);
  writeFileSync(join(tmp.dir, 'pytorch_model.bin'), 'pickle');
  await assert.rejects(openCheckpoint(tmp.dir), /only PyTorch \.bin weights, which Loom does not read/);
});

test('writes refused up front, and no file (or temp file) left behind', async () => {
  using tmp = tempDir('loom-st-bad-');
  const path = join(tmp.dir, 'model.safetensors');
  const bad: [TensorToWrite[], RegExp][] = [
    [[{ name: 'w', shape: [2, 2], data: new Float32Array(3) }], /tensor "w": has 3 elements, shape \[2,2\] needs 4/],
    [[{ name: 'w', shape: [1], data: new Float32Array(1) }, { name: 'w', shape: [1], data: new Float32Array(1) }], /tensor "w": tensor name given twice/],
    [[{ name: '__metadata__', shape: [1], data: new Float32Array(1) }], /reserved or empty tensor name/],
    [[{ name: 'w', shape: [-1], data: new Float32Array(0) }], /tensor "w": shape \[-1\] is not a list/],
    [[{ name: 'w', shape: [1], data: Float32Array.of(0.5), dtype: 'I32' }], /tensor "w": cannot store as I32: element 0 \(0.5\) is not an int32/],
    [[{ name: 'w', shape: [1], data: Float32Array.of(1), dtype: 'F64' as 'F32' }], /tensor "w": cannot write dtype "F64"/],
    [[{ name: 'w', shape: [1], data: () => new Float32Array(2) }], /tensor "w": has 2 elements, shape \[1\] needs 1/],
    [[{ name: 'w', shape: [1], data: BigInt64Array.of(1n), dtype: 'F32' }], /BigInt64Array data can only be stored as I64/],
  ];
  for (const [tensors, message] of bad) {
    await assert.rejects(writeSafetensors(path, tensors), message);
  }
  await assert.rejects(writeSafetensors(path, [{ name: 'w', shape: [1], data: Float32Array.of(1) }], { format: 1 as unknown as string }), /metadata "format" is not a string/);
  await assert.rejects(writeShardedSafetensors(tmp.dir, [], { maxShardBytes: 0 }), /maxShardBytes must be positive/);
  assert.deepEqual(readdirSync(tmp.dir), []);
});
