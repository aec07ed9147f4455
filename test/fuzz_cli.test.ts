// Hostile files through the `loom` command as a user runs it: seeded corruptions of each file of a
// model folder and of data files. The only acceptable outcomes: success, or exit 1 (bad input) or
// 2 (bad usage) with one `loom <cmd>: error: ...` line naming the file; never a signal, a stack
// trace, an "internal error" or a hang.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoLabelled } from '../src/cli/demo_data.js';
import { LOOM, jsonl, ok, tinyModelFolder, suiteTempDir } from './cli_helpers.js';
import { jsonText, mutateBytes, mutateJson, seeded } from './fuzz_helpers.js';

function run(args: string[]): { code: number | null; signal: string | null; stderr: string } {
  const r = spawnSync(process.execPath, [LOOM, ...args], { encoding: 'utf8', input: '', timeout: 60_000, env: { ...process.env, LOOM_NUM_THREADS: '1', LOOM_MEMORY_LIMIT: '1GiB' } });
  return { code: r.status, signal: r.signal, stderr: r.stderr };
}

describe('fuzz: hostile files through the CLI', () => {
  const p = suiteTempDir('loom-fuzz-cli-');
  before(() => {
    tinyModelFolder(p(), { docs: 100 });
    writeFileSync(p('train.jsonl'), jsonl(demoLabelled(24, 0, 1)));
    ok('finetune', '--model', p('init'), '--task', 'classify', '--train', p('train.jsonl'), '--out', p('cls'), '--steps', '1', '--batch-size', '8', '--seq-len', '32');
  });

  // [file of the folder, command]: each model file is corrupted in turn and the command must cope.
  const targets: [string, (m: string) => string[]][] = [
    ['model.safetensors', (m) => ['predict', '--model', m, '--text', 'the battery is great', '--json']],
    ['config.json', (m) => ['predict', '--model', m, '--text', 'the battery is great', '--json']],
    ['tokenizer.json', (m) => ['evaluate', '--model', m, '--task', 'classify', '--data', p('train.jsonl')]],
    ['tokenizer_config.json', (m) => ['info', m, '--json']],
    ['train.jsonl', (m) => ['finetune', '--model', m, '--task', 'classify', '--train', join(m, 'train.jsonl'), '--out', p('ft-out'), '--steps', '1', '--batch-size', '4', '--seq-len', '32']],
  ];
  for (const [file, command] of targets) {
    it(`${file}: 4 seeded corruptions through loom ${command('M')[0]}`, { timeout: 120_000 }, () => {
      const r = seeded(file.length * 7);
      for (let i = 0; i < 4; i++) {
        const m = p(`case-${file}-${i}`);
        cpSync(p('cls'), m, { recursive: true });
        if (file === 'train.jsonl') cpSync(p('train.jsonl'), join(m, file));
        const original = readFileSync(join(m, file));
        const bytes = file.endsWith('.json') && i % 2 === 1 ? Buffer.from(jsonText(mutateJson(r, JSON.parse(original.toString('utf8'))))) : mutateBytes(r, original);
        writeFileSync(join(m, file), bytes);
        const res = run(command(m));
        const what = `${file} case ${i}: exit ${res.code} ${res.signal ?? ''}\n${res.stderr}`;
        if (process.env.LOOM_FUZZ_VERBOSE) console.log(what.split("\n").slice(0, 2).join(" "));
        assert.equal(res.signal, null, what);
        assert.ok(res.code === 0 || res.code === 1 || res.code === 2, what);
        assert.doesNotMatch(res.stderr, /internal error|^\s+at |Cannot read properties|Maximum call stack|panicked/m, what);
        if (res.code !== 0) assert.match(res.stderr, new RegExp(`^loom [a-z -]+: error: .*${file.replace(/\./g, '\\.')}`, 'm'), what);
      }
    });
  }
});
