// Seeded fuzzing of the files a run folder holds: a prepared shard folder's manifest.json (which a
// user can point --data at) and a checkpoint's trainer_state.json / optimizer.json with the manifest
// re-hashed, so the corruption gets past the sha256 check as a hand edit would. Resume either works
// or fails naming the file; it never crashes mid-training or reads outside the folder.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { prepareCorpus } from '../src/data/shards.js';
import { BlockIterator, TokenShards } from '../src/data/shard_reader.js';
import { Trainer, arrayData } from '../src/train/index.js';
import { demoCorpus } from '../src/cli/demo_data.js';
import { gpt2Json, GPT2_CONFIG } from './data_fixtures.js';
import { TinyLM, lmBatches, lmStep } from './train_helpers.js';
import { expectSafe, jsonText, mutateBytes, mutateJson, seeded } from './fuzz_helpers.js';

const CASES = Number(process.env.LOOM_FUZZ_CASES ?? 250);
const data = lmBatches(4, 2, 4, 1);

async function train(runDir: string, maxSteps: number, resume: boolean): Promise<void> {
  const model = new TinyLM();
  const t = new Trainer({ model, step: lmStep, trainData: arrayData(data, { seed: 1 }), config: { maxSteps, saveEvery: 3, lr: 1e-2, runDir, resume, progress: 'none', handleSigint: false } });
  try {
    await t.train();
  } finally {
    t.optimizer.dispose();
    model.dispose();
  }
}

describe('fuzz: run folder files', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'loom-fuzz-run-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`shard manifest.json: ${CASES} mutations, opened and read block by block`, { timeout: 120_000 }, async () => {
    const tokenizer = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(gpt2Json()), config: GPT2_CONFIG });
    const shards = join(dir, 'shards');
    await prepareCorpus({ tokenizer, documents: [demoCorpus(40)], outDir: shards, validationFraction: 0.2, splitChunkTokens: 256 });
    const path = join(shards, 'manifest.json');
    const original = readFileSync(path);
    const manifest = JSON.parse(original.toString('utf8')) as unknown;
    const r = seeded(6);
    for (let i = 0; i < CASES; i++) {
      writeFileSync(path, r(4) === 0 ? mutateBytes(r, original) : Buffer.from(jsonText(mutateJson(r, manifest))));
      await expectSafe(`manifest case ${i}: ${readFileSync(path, 'utf8').slice(0, 300)}`, [path], async () => {
        const s = await TokenShards.open(shards);
        for (const name of ['train', 'validation'] as const) {
          const split = s.split(name);
          try {
            if (split.numBlocks(16) === 0) continue;
            const it = new BlockIterator(split, { blockSize: 16, batchSize: 1, shuffle: true });
            for (let b = 0; b < it.blocksPerEpoch; b++) it.next();
          } finally {
            split.close();
          }
        }
      });
    }
    writeFileSync(path, original);
    // A shard name leaving the folder is refused, not read.
    const m = JSON.parse(original.toString('utf8')) as { splits: { train: { shards: { file: string }[] } } };
    m.splits.train.shards[0]!.file = '../../../../etc/hostname';
    writeFileSync(path, JSON.stringify(m));
    await assert.rejects(TokenShards.open(shards), /splits\.train\.shards\[0\]\.file" must be a plain file name in the folder/);
  });

  it(`checkpoint trainer_state.json / optimizer.json: ${CASES} mutations past the manifest, then resume`, { timeout: 120_000 }, async () => {
    const base = join(dir, 'run');
    await train(base, 3, false);
    const r = seeded(7);
    for (let i = 0; i < CASES; i++) {
      const run = join(dir, `run-${i % 4}`);
      rmSync(run, { recursive: true, force: true });
      cpSync(base, run, { recursive: true });
      const ckpt = join(run, 'checkpoints', 'checkpoint-3');
      const file = i % 3 === 2 ? 'optimizer.json' : 'trainer_state.json';
      const original = readFileSync(join(ckpt, file));
      const bytes = r(4) === 0 ? mutateBytes(r, original) : Buffer.from(jsonText(mutateJson(r, JSON.parse(original.toString('utf8')))));
      writeFileSync(join(ckpt, file), bytes);
      // Re-hash, as a hand edit that also fixed the manifest would.
      const manifestPath = join(ckpt, 'loom_checkpoint.json');
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { files: Record<string, { bytes: number; sha256: string }> };
      manifest.files[file] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
      writeFileSync(manifestPath, JSON.stringify(manifest));
      await expectSafe(`checkpoint case ${i} (${file}): ${Buffer.from(bytes).toString('utf8').slice(0, 300)}`, [file], () => train(run, 5, true));
    }
  });
});
