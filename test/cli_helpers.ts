// Helpers of the CLI end-to-end tests: run `dist/src/cli/loom.js` as a user would (a child process,
// 2 threads), and write small generated files.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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
