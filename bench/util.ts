// Benchmark helpers: timing with warm-up, medians, and the PyTorch reference process.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function time(fn: () => void, repeats: number, warmup = 2): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const OPENMP_BLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

/**
 * Runs a Python script with Debian's torch and the OpenMP OpenBLAS (the reference configuration of
 * ../shared/bench/reference/README.md), feeding `input` as JSON on stdin; returns its JSON lines.
 */
export function runTorch(script: string, args: string[], input: unknown): Record<string, unknown>[] | Error {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return new Error('no /usr/bin/python3 (apt-get install python3-torch libopenblas0-openmp)');
  const env = { ...process.env };
  if (existsSync(OPENMP_BLAS)) env.LD_LIBRARY_PATH = [OPENMP_BLAS, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const r = spawnSync(python, [script, ...args], { input: JSON.stringify(input), env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) return new Error(`PyTorch reference failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
