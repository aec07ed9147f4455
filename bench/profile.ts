// A backend wrapper that counts time per kernel (per training phase), for `npm run bench -- train --profile`.
// Every Backend method call is timed; kernels are synchronous on the cpu backend, so the wall time of
// the call is the kernel's. GEMMs are keyed by shape and transpose flags and also summed into GFLOP/s.

import type { Backend, GemmArgs } from '../src/backends/backend.js';

interface Entry {
  calls: number;
  s: number;
  flops: number;
}

export type Phase = 'forward' | 'backward' | 'optimizer';

export class KernelProfiler {
  readonly backend: Backend;
  private phase: Phase = 'forward';
  private table = new Map<string, Entry>();

  constructor(target: Backend) {
    const self = this;
    const wrapped = new Map<PropertyKey, unknown>();
    this.backend = new Proxy(target, {
      get(t, prop) {
        const v = Reflect.get(t, prop, t) as unknown;
        if (typeof v !== 'function') return v;
        let w = wrapped.get(prop);
        if (!w) {
          const fn = v as (...args: unknown[]) => unknown;
          w = function (this: unknown, ...args: unknown[]): unknown {
            const t0 = performance.now();
            const r = fn.apply(t, args);
            self.add(String(prop), args, (performance.now() - t0) / 1000);
            return r;
          };
          wrapped.set(prop, w);
        }
        return w;
      },
    });
  }

  setPhase(p: Phase): void {
    this.phase = p;
  }

  reset(): void {
    this.table.clear();
  }

  private add(method: string, args: unknown[], s: number): void {
    let key = method;
    let flops = 0;
    if (method === 'gemm') {
      const g = args[3] as GemmArgs;
      key = `gemm ${g.batch > 1 ? `${g.batch}x ` : ''}${g.m}x${g.k}x${g.n}${g.transA ? ' tA' : ''}${g.transB ? ' tB' : ''}${args[4] ? ' +bias' : ''}`;
      flops = 2 * g.batch * g.m * g.n * g.k;
    } else if (method === 'unary' || method === 'binary' || method === 'reduce' || method === 'unaryBackward') {
      key = `${method} ${String(args[0])}`;
    }
    const k = `${this.phase}|${key}`;
    const e = this.table.get(k) ?? { calls: 0, s: 0, flops: 0 };
    e.calls++;
    e.s += s;
    e.flops += flops;
    this.table.set(k, e);
  }

  /** Per timed step: kernel ms per phase (top kernels), GEMM share and GFLOP/s, time outside kernels. */
  report(steps: number, stepMedianS: number, phaseMedianS?: Record<Phase, number>): Record<string, unknown> {
    const perPhase: Record<string, { kernel_ms: number; gemm_ms: number; gemm_gflops: number; top: [string, number, number][] }> = {};
    let kernelS = 0;
    let gemmS = 0;
    let gemmFlops = 0;
    const byKernel = new Map<string, Entry>();
    for (const [k, e] of this.table) {
      const [phase, key] = k.split('|') as [string, string];
      const p = (perPhase[phase] ??= { kernel_ms: 0, gemm_ms: 0, gemm_gflops: 0, top: [] });
      p.kernel_ms += (e.s / steps) * 1000;
      if (key.startsWith('gemm')) {
        p.gemm_ms += (e.s / steps) * 1000;
        p.gemm_gflops += e.flops / steps; // flops for now, divided below
        gemmS += e.s;
        gemmFlops += e.flops;
      }
      kernelS += e.s;
      p.top.push([key, round((e.s / steps) * 1000), round(e.calls / steps)]);
      const kind = key.startsWith('gemm') ? 'gemm' : key;
      const b = byKernel.get(kind) ?? { calls: 0, s: 0, flops: 0 };
      b.calls += e.calls;
      b.s += e.s;
      byKernel.set(kind, b);
    }
    for (const p of Object.values(perPhase)) {
      p.gemm_gflops = round(p.gemm_ms > 0 ? p.gemm_gflops / (p.gemm_ms / 1000) / 1e9 : 0);
      p.kernel_ms = round(p.kernel_ms);
      p.gemm_ms = round(p.gemm_ms);
      p.top = p.top.sort((a, b) => b[1] - a[1]).slice(0, 12);
    }
    const stepMs = stepMedianS * 1000;
    return {
      note: 'ms per timed step; top: [kernel, ms, calls]; mean over timed steps (step_time median for comparison)',
      step_ms_median: round(stepMs),
      kernel_ms: round((kernelS / steps) * 1000),
      gemm_ms: round((gemmS / steps) * 1000),
      gemm_share_of_step: round(gemmS / steps / stepMedianS, 3),
      gemm_gflops: round(gemmS > 0 ? gemmFlops / gemmS / 1e9 : 0),
      outside_kernels_ms: round(stepMs - (kernelS / steps) * 1000),
      phase_ms: phaseMedianS ? Object.fromEntries(Object.entries(phaseMedianS).map(([k, v]) => [k, round(v * 1000)])) : undefined,
      by_kind: [...byKernel].map(([k, e]) => [k, round((e.s / steps) * 1000), round(e.calls / steps)] as [string, number, number]).sort((a, b) => b[1] - a[1]).slice(0, 15),
      phases: perPhase,
    };
  }
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
