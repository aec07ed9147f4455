// Seeded fuzzing of data files (JSONL, CSV, CoNLL; classification, NER and chat records) through
// the readers and the task encoders, and of tokenizer folders (tokenizer.json,
// tokenizer_config.json) through LoomTokenizer in a child process, since `tokenizers` is native code
// that could abort the process: every case loads or fails with an error naming the file.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { readConll } from '../src/data/readers/conll.js';
import { readCsv } from '../src/data/readers/csv.js';
import { readJsonl } from '../src/data/readers/jsonl.js';
import { discoverLabels, encodeTask, readTaskFile, type FinetuneTask } from '../src/tasks/examples.js';
import { gpt2Json, GPT2_CONFIG } from './data_fixtures.js';
import { expectSafe, mutateBytes, peakRssMiB, seeded } from './fuzz_helpers.js';

const CASES = Number(process.env.LOOM_FUZZ_CASES ?? 250);
const CHILD = fileURLToPath(new URL('./fuzz_tokenizer_child.js', import.meta.url));

const CLASSIFY_JSONL = [
  { text: 'the cat sat', label: 'pos' }, { text: 'a "quoted" dog, barking', label: 'neg' }, { text: 'émoji 🐱 and ünïcode', label: 'pos' },
  { text: 'pair one', text_pair: 'pair two', label: 'neg' },
].map((r) => JSON.stringify(r)).join('\n') + '\n';
const CLASSIFY_CSV = 'text,label\nthe cat sat,pos\n"a ""quoted"" dog, barking",neg\n"multi\nline",pos\némoji 🐱,neg\n';
const CONLL = '-DOCSTART- O\n\nAda B-PER\nLovelace I-PER\nwas O\nborn O\nin O\nLondon B-LOC\n\nThe O\ncat O\n';
const CHAT_JSONL = [
  { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello there' }] },
  { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'why?' }, { role: 'assistant', content: 'because' }] },
].map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('fuzz: data files', () => {
  let dir = '';
  let tokenizer: LoomTokenizer;
  const startRss = peakRssMiB();
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'loom-fuzz-data-'));
    tokenizer = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(gpt2Json()), config: { ...GPT2_CONFIG, pad_token: '<|endoftext|>' } });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    assert.ok(peakRssMiB() - startRss < 512, `peak RSS grew by ${(peakRssMiB() - startRss).toFixed(0)} MiB during the fuzz`);
  });

  const inputs: [string, string, FinetuneTask, string][] = [
    ['classify JSONL', 'data.jsonl', 'classify', CLASSIFY_JSONL],
    ['classify CSV', 'data.csv', 'classify', CLASSIFY_CSV],
    ['NER CoNLL', 'data.conll', 'ner', CONLL],
    ['chat JSONL', 'chat.jsonl', 'chat', CHAT_JSONL],
  ];
  for (const [what, name, task, text] of inputs) {
    it(`${what}: ${CASES} seeded mutations through the reader and the task encoder`, { timeout: 120_000 }, async () => {
      const r = seeded(name.length * 31 + text.length);
      const path = join(dir, name);
      const valid = Buffer.from(text);
      for (let i = 0; i < CASES; i++) {
        // Several mutations on top of each other reach further than one.
        let bytes: Uint8Array = valid;
        for (let k = 0, n = 1 + r(3); k < n; k++) bytes = mutateBytes(r, bytes);
        writeFileSync(path, bytes);
        await expectSafe(`${what} case ${i}: ${JSON.stringify(Buffer.from(bytes).toString('utf8').slice(0, 200))}`, [path], async () => {
          const records = await readTaskFile(task, path, {});
          await encodeTask(tokenizer, records, discoverLabels(records), { seqLen: 16, batchSize: 2 });
        });
        // The raw readers, skipping bad rows, must not throw for a bad row at all.
        const reader = name.endsWith('.csv') ? readCsv(path, { skipBadRows: true }) : name.endsWith('.conll') ? readConll(path, { skipBadRows: true }) : readJsonl(path, { skipBadRows: true });
        await expectSafe(`${what} case ${i} (skipBadRows)`, [path], () => reader.toArray());
      }
    });
  }

  it('a long line with no newline and a file of invalid UTF-8 are read (or refused) without trouble', async () => {
    const path = join(dir, 'long.jsonl');
    writeFileSync(path, `{"text": "${'a'.repeat(5_000_000)}", "label": "x"}`);
    const records = await readTaskFile('classify', path, {});
    assert.equal(records.records.length, 1);
    writeFileSync(path, Buffer.from([0xff, 0xfe, 0x80, 0x0a, 0xc0, 0xaf]));
    await expectSafe('invalid UTF-8', [path], () => readTaskFile('classify', path, {}));
  });

  it(`tokenizer folders: ${CASES * 2} mutations of tokenizer.json and tokenizer_config.json, in a child process`, { timeout: 180_000 }, () => {
    const r = spawnSync(process.execPath, [CHILD], { encoding: 'utf8', env: { ...process.env, LOOM_FUZZ_TOKENIZER_CHILD: '1', LOOM_FUZZ_DIR: dir, LOOM_FUZZ_CASES: String(CASES) }, timeout: 170_000 });
    assert.equal(r.signal, null, `the child died of ${r.signal} (a native crash?):\n${r.stderr.slice(-3000)}`);
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const done = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: number; error: number };
    assert.equal(done.ok + done.error, CASES * 2);
    assert.ok(done.error > 0 && done.ok > 0, JSON.stringify(done));
  });
});
