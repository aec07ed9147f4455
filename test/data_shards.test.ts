// Token shards: prepare -> read round trip across shard edges, the chunked train/validation split,
// uint16/uint32, atomic output, tokenizer check, seeded shuffling and resuming from a cursor.

import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTextFiles } from '../src/data/readers/text.js';
import { TokenShards } from '../src/data/shard_reader.js';
import { prepareCorpus } from '../src/data/shards.js';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { trainByteLevelBpe } from '../src/io/tokenizer_train.js';
import { BERT_CONFIG, bertJson, gpt2Json, GPT2_CONFIG, tempDir } from './data_fixtures.js';

const DOCS = Array.from({ length: 40 }, (_, d) => `Document ${d}: ${'the quick brown fox jumps over the lazy dog '.repeat(1 + (d % 5))}and ${d * 7} more.`);
const tokenizerPromise = trainByteLevelBpe(DOCS, { vocabSize: 320 }).then((t) => t.tokenizer);

async function stream(tok: LoomTokenizer, docs: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const ids of await tok.encodeBatch(docs, { addSpecialTokens: false })) out.push(...ids, tok.eosId!);
  return out;
}

test('prepare -> read: every token back, EOS after each document, chunks split train/validation', async () => {
  using tmp = tempDir();
  const tok = await tokenizerPromise;
  const m = await prepareCorpus({ tokenizer: tok, documents: DOCS, outDir: tmp.dir, validationFraction: 0.25, splitChunkTokens: 64, shardTokens: 100, batchChars: 300 });
  const all = await stream(tok, DOCS);
  assert.equal(m.dtype, 'uint16');
  assert.equal(m.documents, DOCS.length);
  assert.equal(m.splits.train.tokens + m.splits.validation.tokens, all.length);
  assert.ok(m.splits.train.shards.length > 1, 'several shards');
  assert.ok(m.splits.train.shards.slice(0, -1).every((s) => s.tokens === 100));
  const chunks = Math.ceil(all.length / 64);
  const valChunks = Math.ceil(m.splits.validation.tokens / 64);
  assert.ok(Math.abs(valChunks - chunks * 0.25) <= 1, `${valChunks} of ${chunks} chunks in validation`);

  const shards = await TokenShards.open(tmp.dir, { tokenizer: tok });
  using train = shards.split('train');
  using val = shards.split('validation');
  const t = Array.from(train.read(0, train.tokens));
  const v = Array.from(val.read(0, val.tokens));
  // Walk the stream chunk by chunk: each chunk is the next one of exactly one split.
  let ti = 0;
  let vi = 0;
  for (let c = 0; c < chunks; c++) {
    const chunk = all.slice(c * 64, (c + 1) * 64).join();
    if (v.slice(vi, vi + 64).join() === chunk) vi += 64;
    else {
      assert.equal(t.slice(ti, ti + 64).join(), chunk, `chunk ${c}`);
      ti += 64;
    }
  }
  assert.deepEqual([ti >= t.length, vi >= v.length], [true, true]);
  // Reads across a shard edge.
  assert.deepEqual(Array.from(train.read(95, 10)), t.slice(95, 105));
  assert.throws(() => train.read(train.tokens - 1, 2), /outside/);
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.includes('.tmp')), []);
  for (const s of m.splits.train.shards) assert.equal(statSync(join(tmp.dir, s.file)).size, s.tokens * 2);
});

test('a file streamed in pieces gives the ids of the whole file and one EOS; re-prepare replaces old shards', async () => {
  using tmp = tempDir();
  const tok = await tokenizerPromise;
  const file = join(tmp.dir, 'corpus.txt');
  const text = `${DOCS.join('\n')}\n`;
  writeFileSync(file, text);
  const out = join(tmp.dir, 'out');
  await prepareCorpus({ tokenizer: tok, documents: DOCS, outDir: out, validationFraction: 0, shardTokens: 50 });
  const before = readdirSync(out).length;
  const m = await prepareCorpus({ tokenizer: tok, documents: readTextFiles(file, { pieceChars: 200 }), outDir: out, validationFraction: 0 });
  assert.equal(m.documents, 1);
  assert.equal(m.splits.validation.tokens, 0);
  assert.deepEqual(readdirSync(out).sort(), ['manifest.json', 'train_000000.bin']);
  assert.ok(before > 2);
  const shards = await TokenShards.open(out);
  using train = shards.split('train');
  assert.deepEqual(Array.from(train.read(0, train.tokens)), [...(await tok.encode(text, { addSpecialTokens: false })), tok.eosId]);
});

test('uint32 shards for vocabularies over 65536 ids; template boundary when there is no EOS', async () => {
  using tmp = tempDir();
  const json = gpt2Json() as { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] };
  for (let i = 263; i < 70000; i++) json.model.vocab[`tok${i}`] = i;
  json.model.vocab['<|endoftext|>'] = 70000;
  json.added_tokens[0]!.id = 70000;
  const tok = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(json), config: GPT2_CONFIG });
  const m = await prepareCorpus({ tokenizer: tok, documents: ['the cat', 'sat'], outDir: tmp.dir, validationFraction: 0 });
  assert.equal(m.dtype, 'uint32');
  using train = (await TokenShards.open(tmp.dir)).split('train');
  assert.deepEqual(Array.from(train.read(0, train.tokens)), [116, 257, 261, 70000, 115, 260, 70000]);

  const bert = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(bertJson()), config: BERT_CONFIG });
  const out = join(tmp.dir, 'bert');
  const mb = await prepareCorpus({ tokenizer: bert, documents: ['The cat', 'sat.'], outDir: out, validationFraction: 0 });
  assert.equal(mb.boundary, 'template');
  using bt = (await TokenShards.open(out)).split('train');
  assert.deepEqual(Array.from(bt.read(0, bt.tokens)), [2, 5, 6, 3, 2, 7, 12, 3]);
});

test('tokenizer mismatch, missing manifest and empty corpus are clear errors', async () => {
  using tmp = tempDir();
  const tok = await tokenizerPromise;
  await assert.rejects(TokenShards.open(tmp.dir), /manifest\.json: cannot read \(was the corpus prepared/);
  await prepareCorpus({ tokenizer: tok, documents: DOCS.slice(0, 3), outDir: tmp.dir, validationFraction: 0 });
  const other = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(gpt2Json()), config: GPT2_CONFIG });
  await assert.rejects(TokenShards.open(tmp.dir, { tokenizer: other }), /made with another tokenizer/);
  await assert.rejects(prepareCorpus({ tokenizer: tok, documents: ['', '  '], outDir: tmp.dir }), /corpus is empty/);
  // A reader failing half way: the error comes through and no temp file or manifest is left.
  async function* failing(): AsyncGenerator<string> {
    yield* DOCS;
    throw new Error('corpus.jsonl:41: invalid JSON');
  }
  await assert.rejects(prepareCorpus({ tokenizer: tok, documents: failing(), outDir: tmp.dir, batchChars: 100 }), /corpus\.jsonl:41/);
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp') || f === 'manifest.json'), []);
});

test('blocks: sequential or seeded shuffle, each epoch a permutation, resume from a saved cursor', async () => {
  using tmp = tempDir();
  const tok = await tokenizerPromise;
  await prepareCorpus({ tokenizer: tok, documents: DOCS, outDir: tmp.dir, validationFraction: 0, shardTokens: 300 });
  const shards = await TokenShards.open(tmp.dir);
  using train = shards.split('train');
  const all = train.read(0, train.tokens);
  const blockSize = 16;
  const n = train.numBlocks(blockSize);
  const plain = train.blocks({ blockSize, batchSize: 2, shuffle: false });
  const first = plain.next().value;
  assert.deepEqual(first.shape, [2, 16]);
  assert.deepEqual(Array.from(first.tokens), Array.from(all.subarray(0, 32)));

  // Blocks may repeat in content, so compare epochs as multisets of block contents.
  const blockText = (b: number): string => all.subarray(b * blockSize, (b + 1) * blockSize).join();
  const sequential = Array.from({ length: n }, (_, b) => blockText(b));
  const it = train.blocks({ blockSize, batchSize: 1, seed: 7 });
  const epoch0 = Array.from({ length: n }, () => it.next().value.tokens.join());
  const epoch1 = Array.from({ length: n }, () => it.next().value.tokens.join());
  assert.deepEqual([...epoch0].sort(), [...sequential].sort());
  assert.deepEqual([...epoch1].sort(), [...sequential].sort());
  assert.notDeepEqual(epoch0, sequential);
  assert.notDeepEqual(epoch0, epoch1);
  const same = train.blocks({ blockSize, batchSize: 1, seed: 7 });
  assert.equal(same.next().value.tokens.join(), epoch0[0]);
  assert.equal(it.cursor.epoch, 2);

  // Resume: stop after 5 batches of 3 (crossing into epoch 1 when n < 15), save, continue.
  const a = train.blocks({ blockSize, batchSize: 3, seed: 3 });
  for (let i = 0; i < 5; i++) a.next();
  const saved = JSON.parse(JSON.stringify(a.cursor));
  const expected = [a.next().value.tokens, a.next().value.tokens];
  const b = train.blocks({ blockSize, batchSize: 3, cursor: saved });
  assert.deepEqual([b.next().value.tokens, b.next().value.tokens], expected);
  assert.throws(() => train.blocks({ blockSize: 8, batchSize: 1, cursor: saved }), /cursor is for split train with blockSize 16/);
});
