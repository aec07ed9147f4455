// The backend configurations every op test runs on: the TypeScript reference, and the native CPU
// backend at each instruction-set level this machine has, with both GEMM implementations.

import type { Backend } from '../src/backends/backend.js';
import { ReferenceBackend } from '../src/backends/reference/index.js';
import { CpuBackend, tryCreateCpuBackend } from '../src/backends/cpu/index.js';

export interface BackendConfig {
  name: string;
  create(): Backend;
}

const ISAS = ['avx512', 'avx2', 'portable'] as const;

export function backendConfigs(): BackendConfig[] {
  const configs: BackendConfig[] = [{ name: 'reference', create: () => new ReferenceBackend() }];
  const probe = tryCreateCpuBackend();
  if (probe instanceof Error) {
    if (process.env.LOOM_REQUIRE_NATIVE === '1') throw probe;
    return configs;
  }
  const gemms = probe.hasBlas() ? (['blas', 'own'] as const) : (['own'] as const);
  for (const isa of ISAS) {
    try {
      probe.setIsa(isa);
    } catch {
      continue; // this CPU lacks the level
    }
    for (const gemm of gemms) {
      configs.push({
        name: `cpu ${isa} gemm=${gemm}`,
        create: () => {
          const b = new CpuBackend();
          b.setIsa(isa);
          b.setGemm(gemm);
          return b;
        },
      });
    }
  }
  return configs;
}

/** Elementwise closeness: |a - e| <= atol + rtol |e|, with atol scaled to the largest |e|. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-4, atolScale = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) maxAbs = Math.max(maxAbs, Math.abs(expected[i]!));
  const atol = atolScale * Math.max(1, maxAbs);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`${what}: element ${i} is ${a}, expected ${e} (atol ${atol.toExponential(2)}, rtol ${rtol})`);
    }
  }
}

/** Deterministic uniform [lo, hi) generator (mulberry32) for test data. */
export function uniformRng(seed: number): (lo?: number, hi?: number) => number {
  let a = seed >>> 0;
  return (lo = -1, hi = 1) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  };
}
