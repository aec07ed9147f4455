// Helpers of the CLI end-to-end tests: run `dist/src/cli/loom.js` as a user would (a child process,
// 2 threads), and write small generated files.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { demoCorpus } from '../src/cli/demo_data.js';

export const LOOM = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'loom.js');

export interface LoomResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `loom ...args` (optionally with `input` piped to stdin). */
export function loomWith(opts: { input?: string }, ...args: string[]): LoomResult {
  const r = spawnSync(process.execPath, [LOOM, ...args], { encoding: 'utf8', input: opts.input ?? '', env: { ...process.env, LOOM_NUM_THREADS: '2' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function loom(...args: string[]): LoomResult {
  return loomWith({}, ...args);
}

/** Runs `loom ...args`, asserts exit 0 and returns stdout. */
export function ok(...args: string[]): string {
  const r = loom(...args);
  assert.equal(r.code, 0, `loom ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** Runs `loom ...args --json` style commands and parses stdout. */
export function okJson<T>(...args: string[]): T {
  return JSON.parse(ok(...args)) as T;
}

/**
 * A temp folder for the enclosing describe(): made before its tests, removed after them. Returns
 * p(...parts), a path inside it (p() is the folder itself). Call it before the suite's own before().
 */
export function suiteTempDir(prefix: string): (...parts: string[]) => string {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  return (...parts) => join(dir, ...parts);
}

export const jsonl = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** A run folder's metrics.jsonl as records. */
export function readMetrics(dir: string): { step: number; split: string; loss: number; [k: string]: unknown }[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; split: string; loss: number });
}

/** The tensor names of a .safetensors file (its JSON header). */
export function safetensorsKeys(file: string): string[] {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return Object.keys(JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as object).filter((k) => k !== '__metadata__');
}

/** A small seeded generator (mulberry32) for test data. */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/**
 * A tiny GPT-2 model folder made with the CLI in `dir`: corpus.txt (the demo corpus), tok/ (a
 * 300-token BPE), init/ (1 layer, width 32). What the fault, fuzz and memory tests start from.
 */
export function tinyModelFolder(dir: string, o: { docs?: number; width?: number; layers?: number; positions?: number; chatTemplate?: boolean } = {}): { corpus: string; tokenizer: string; model: string } {
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, demoCorpus(o.docs ?? 200));
  const width = o.width ?? 32;
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ n_layer: o.layers ?? 1, n_embd: width, n_head: 2, n_inner: 2 * width, n_positions: o.positions ?? 64 }));
  ok('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', ...(o.chatTemplate ? ['--chat-template'] : []), '--out', join(dir, 'tok'), corpus);
  ok('init', '--arch', 'gpt2', '--preset', 'tiny', '--config', join(dir, 'model.json'), '--tokenizer', join(dir, 'tok'), '--out', join(dir, 'init'));
  return { corpus, tokenizer: join(dir, 'tok'), model: join(dir, 'init') };
}
