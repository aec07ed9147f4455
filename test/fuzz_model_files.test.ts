// Seeded fuzzing of model files: safetensors bytes and headers, sharded indexes, config.json, fed to
// openSafetensors / openCheckpoint / loadPretrained. Every case must load or fail with an error that
// names the file; none may crash, hang, or allocate far beyond the file (peak RSS is watched).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint, writeSafetensors, writeShardedSafetensors } from '../src/io/safetensors.js';
import { fromPreset, loadPretrained } from '../src/models/pretrained.js';
import { concat, expectSafe, jsonText, mutateBytes, mutateJson, peakRssMiB, seeded } from './fuzz_helpers.js';

const CASES = Number(process.env.LOOM_FUZZ_CASES ?? 250);

/** Reads every tensor of an open checkpoint in every way, so lazy reads are exercised too. */
async function readAll(path: string): Promise<void> {
  const ck = await openCheckpoint(path);
  try {
    for (const [name, info] of ck.tensors) {
      await ck.readRaw(name);
      if (info.dtype === 'I64' || info.dtype === 'I32') await ck.readI32(name);
      else await ck.readF32(name);
    }
  } finally {
    await ck.close();
  }
}

/** A valid file's JSON header and data section. */
function splitFile(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  return { header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>, data: bytes.subarray(8 + n) };
}

function joinFile(header: string, data: Uint8Array, lie?: bigint): Uint8Array {
  const h = Buffer.from(header);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lie ?? BigInt(h.length));
  return concat(prefix, h, data);
}

describe('fuzz: model files', () => {
  let dir = '';
  let valid = new Uint8Array(0);
  const startRss = peakRssMiB();
  const limit = process.env.LOOM_MEMORY_LIMIT;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'loom-fuzz-model-'));
    // Small enough that every case is fast; the budget makes "a config of 1e9 parameters" a refusal.
    process.env.LOOM_MEMORY_LIMIT = '256MiB';
    await writeSafetensors(join(dir, 'valid.safetensors'), [
      { name: 'w', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
      { name: 'h', shape: [5], data: Float32Array.of(1, 2, 3, 4, 5), dtype: 'F16' },
      { name: 'b', shape: [2, 2], data: Float32Array.of(1, -2, 3, -4), dtype: 'BF16' },
      { name: 'ids', shape: [3], data: BigInt64Array.of(1n, 2n, -3n), dtype: 'I64' },
      { name: 'n', shape: [2], data: Int32Array.of(7, -7), dtype: 'I32' },
    ]);
    valid = readFileSync(join(dir, 'valid.safetensors'));
    const model = fromPreset('gpt2', 'tiny', 'causal-lm', { config: { n_layer: 1, n_embd: 16, n_head: 2, n_positions: 32, vocab_size: 50 } });
    await model.save(join(dir, 'model'));
    mkdirSync(join(dir, 'sharded'));
    await writeShardedSafetensors(join(dir, 'sharded'), [...model.stateDict()].map(([name, t]) => ({ name, shape: [...t.shape], data: t.dataSync() as Float32Array })), { maxShardBytes: 4096 });
    cpSync(join(dir, 'model', 'config.json'), join(dir, 'sharded', 'config.json'));
    model.dispose();
  });
  after(() => {
    if (limit === undefined) delete process.env.LOOM_MEMORY_LIMIT;
    else process.env.LOOM_MEMORY_LIMIT = limit;
    rmSync(dir, { recursive: true, force: true });
    // No case may have allocated more than a fraction of what a multi-GB allocation would show.
    assert.ok(peakRssMiB() - startRss < 512, `peak RSS grew by ${(peakRssMiB() - startRss).toFixed(0)} MiB during the fuzz`);
  });

  it(`safetensors bytes: ${CASES} seeded mutations (bit flips, truncation, insertions, invalid UTF-8)`, { timeout: 120_000 }, async () => {
    const r = seeded(1);
    const path = join(dir, 'bytes.safetensors');
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < CASES; i++) {
      writeFileSync(path, mutateBytes(r, valid));
      seen[await expectSafe(`bytes case ${i}`, [path], () => readAll(path))]++;
    }
    assert.ok(seen.error > CASES / 2, `most mutations must be caught: ${JSON.stringify(seen)}`);
  });

  it(`safetensors headers: ${CASES} structural mutations (type swaps, huge shapes and offsets, dtype/shape mismatches, length lies)`, { timeout: 120_000 }, async () => {
    const r = seeded(2);
    const { header, data } = splitFile(valid);
    const path = join(dir, 'header.safetensors');
    for (let i = 0; i < CASES; i++) {
      const text = jsonText(mutateJson(r, header));
      const lies = [undefined, 0n, 2n ** 63n - 1n, BigInt(Buffer.byteLength(text) + 1 + r(64)), BigInt(Buffer.byteLength(text)) - 1n];
      const lie = lies[r(lies.length)];
      writeFileSync(path, joinFile(text, data, lie === undefined || lie < 0n ? undefined : lie));
      await expectSafe(`header case ${i}: ${text.slice(0, 200)}`, [path], () => readAll(path));
    }
  });

  it(`sharded index: ${Math.floor(CASES / 2)} mutations of model.safetensors.index.json`, { timeout: 120_000 }, async () => {
    const r = seeded(3);
    const indexPath = join(dir, 'sharded', 'model.safetensors.index.json');
    const original = readFileSync(indexPath);
    const index = JSON.parse(original.toString('utf8')) as unknown;
    try {
      for (let i = 0; i < CASES / 2; i++) {
        const bytes = r(3) === 0 ? mutateBytes(r, original) : Buffer.from(jsonText(mutateJson(r, index)));
        writeFileSync(indexPath, bytes);
        await expectSafe(`index case ${i}`, [indexPath, 'model.safetensors.index.json'], () => readAll(join(dir, 'sharded')));
      }
    } finally {
      writeFileSync(indexPath, original);
    }
  });

  it(`config.json: ${CASES} mutations, loaded by loadPretrained with the weights`, { timeout: 120_000 }, async () => {
    const r = seeded(4);
    const configPath = join(dir, 'model', 'config.json');
    const original = readFileSync(configPath);
    const config = JSON.parse(original.toString('utf8')) as unknown;
    try {
      for (let i = 0; i < CASES; i++) {
        const bytes = r(4) === 0 ? mutateBytes(r, original) : Buffer.from(jsonText(mutateJson(r, config)));
        writeFileSync(configPath, bytes);
        await expectSafe(`config case ${i}: ${Buffer.from(bytes).toString('utf8').slice(0, 300)}`, [configPath, 'model.safetensors'], async () => {
          const { model } = await loadPretrained(join(dir, 'model'), { warn: false });
          model.dispose();
        });
      }
    } finally {
      writeFileSync(configPath, original);
    }
  });

  it('shard names leaving the folder (../, absolute, a symlink, a symlinked folder) are refused', async () => {
    const { symlinkSync } = await import('node:fs');
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    await writeSafetensors(join(outside, 'evil.safetensors'), [{ name: 'a', shape: [1], data: Float32Array.of(1) }]);
    const cases: [string, string, (d: string) => void][] = [
      ['dotdot', '../outside/evil.safetensors', () => undefined],
      ['nested dotdot', 'sub/../../outside/evil.safetensors', () => undefined],
      ['absolute', join(outside, 'evil.safetensors'), () => undefined],
      ['symlink', 'link.safetensors', (d) => symlinkSync(join(outside, 'evil.safetensors'), join(d, 'link.safetensors'))],
      ['symlinked folder', 'sub/evil.safetensors', (d) => symlinkSync(outside, join(d, 'sub'))],
    ];
    for (const [what, shard, prepare] of cases) {
      const d = join(dir, `escape-${what.replace(/ /g, '-')}`);
      mkdirSync(d);
      prepare(d);
      writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: shard } }));
      await assert.rejects(openCheckpoint(d), /refusing a file name that is absolute or leaves the model folder|outside the model folder; refusing it/, what);
    }
  });
});
