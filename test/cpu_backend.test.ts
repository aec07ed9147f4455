// Tests of the native CPU backend (native/, src/backends/cpu/): every kernel against the TypeScript
// reference backend (and plain TS loops for gemm) on random inputs with awkward sizes, at every ISA level
// this CPU has and with both GEMM implementations; plus determinism, exact-bit checks and error paths.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionArgs, Backend, GemmArgs, Storage, UnaryOp } from '../src/backends/backend.js';
import { dropoutUniform } from '../src/backends/backend.js';
import { ReferenceBackend } from '../src/backends/reference/index.js';
import { CpuBackend, loadNativeAddon, tryCreateCpuBackend, type Isa } from '../src/backends/cpu/index.js';
import { uniformRng } from './backends.js';

const probe = tryCreateCpuBackend();
if (probe instanceof Error && process.env.LOOM_REQUIRE_NATIVE === '1') throw probe;
const skip = probe instanceof Error ? `native addon unavailable: ${probe.message.split('\n')[0]}` : false;

const ref = new ReferenceBackend();

// ---------- helpers ----------

const rng = uniformRng;
const R = rng(12345);
const rand = (n: number, lo = -1, hi = 1): Float32Array => Float32Array.from({ length: n }, () => R(lo, hi));

function put(be: Backend, data: Float32Array | Int32Array): Storage {
  const s = be.alloc(data instanceof Float32Array ? 'f32' : 'i32', data.length);
  be.write(s, data);
  return s;
}
const out = (be: Backend, n: number, fill = NaN): Storage => {
  const s = be.alloc('f32', n);
  be.fill(s, fill);
  return s;
};
const get = (be: Backend, s: Storage): Float32Array => be.readSync(s) as Float32Array;

/** |a - e| <= atol + rtol |e| with atol = atolScale * max(1, max |e|); NaN must match NaN. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-5, atolScale = 1e-6): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i]!)) maxAbs = Math.max(maxAbs, Math.abs(expected[i]!));
  const atol = atolScale * Math.max(1, maxAbs);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) ? Number.isNaN(a) : a === e || Math.abs(a - e) <= atol + rtol * Math.abs(e)) continue;
    assert.fail(`${what}: element ${i} is ${a}, expected ${e} (rtol ${rtol}, atol ${atol.toExponential(1)})`);
  }
}

/** Runs `fn` on the reference and the CPU backend with the same host inputs and compares named outputs. */
function versusRef(
  cpu: CpuBackend,
  what: string,
  fn: (be: Backend, put: (d: Float32Array | Int32Array) => Storage) => Record<string, Storage>,
  rtol = 1e-5,
  atolScale = 1e-6,
): void {
  const want = fn(ref, (d) => put(ref, d));
  const got = fn(cpu, (d) => put(cpu, d));
  for (const key of Object.keys(want)) close(get(cpu, got[key]!), get(ref, want[key]!), `${what} ${key}`, rtol, atolScale);
}

const ISAS: Isa[] = ['avx512', 'avx2', 'portable'];
function availableIsas(cpu: CpuBackend): Isa[] {
  const best = cpu.bestIsa();
  return ISAS.slice(ISAS.indexOf(best));
}

// ---------- per-ISA kernel tests ----------

const cpu = probe instanceof Error ? null : probe;
const isas = cpu ? availableIsas(cpu) : ['portable' as Isa];
const SIZES = [1, 7, 33, 65, 129];

after(() => {
  if (cpu) {
    cpu.setIsa(cpu.bestIsa());
    if (cpu.hasBlas()) cpu.setGemm('auto');
  }
});

for (const isa of isas) {
  describe(`cpu backend, isa=${isa}`, { skip }, () => {
    const be = cpu!;
    test('set ISA', () => {
      be.setIsa(isa);
      assert.equal(be.isa(), isa);
    });

    test('unary and unaryBackward, every op', () => {
      be.setIsa(isa);
      const ops: [UnaryOp, number, number, number][] = [
        ['neg', 0, -3, 3],
        ['exp', 0, -20, 20],
        ['log', 0, 1e-3, 50],
        ['sqrt', 0, 1e-3, 50],
        ['tanh', 0, -6, 6],
        ['sigmoid', 0, -20, 20],
        ['relu', 0, -2, 2],
        ['silu', 0, -10, 10],
        ['gelu', 0, -6, 6],
        ['gelu_tanh', 0, -6, 6],
        ['pow', 2, -3, 3],
        ['pow', 3, -3, 3],
        ['pow', 0.5, 0.01, 4],
        ['pow', -1, 0.1, 4],
        ['pow', 1.7, 0.01, 4],
        ['scale', -1.5, -3, 3],
        ['add_scalar', 0.25, -3, 3],
      ];
      for (const n of [...SIZES, 1000]) {
        for (const [op, p, lo, hi] of ops) {
          const x = rand(n, lo, hi);
          const dy = rand(n);
          versusRef(
            be,
            `${op}(${p}) n=${n}`,
            (b, up) => {
              const xs = up(x), y = out(b, n), dx = out(b, n);
              b.unary(op, xs, y, p);
              b.unaryBackward(op, xs, y, up(dy), dx, p);
              return { y, dx };
            },
            2e-6,
            1e-6,
          );
        }
      }
    });

    test('special values: NaN, +-Inf, huge and tiny arguments', () => {
      be.setIsa(isa);
      const x = Float32Array.from([NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-30, 88.7, 88.8, -87.5, -103, -110, 1e30, -1e30]);
      for (const op of ['exp', 'log', 'tanh', 'sigmoid', 'relu', 'silu', 'gelu', 'gelu_tanh', 'sqrt'] as UnaryOp[]) {
        versusRef(be, `${op} special`, (b, up) => {
          const y = out(b, x.length);
          b.unary(op, up(x), y, 0);
          return { y };
        }, 1e-5, 1e-30);
      }
    });

    test('binary with broadcasting and aliasing', () => {
      be.setIsa(isa);
      const cases: [number[], number[], number[]][] = [
        [[129], [129], [129]],
        [[65], [1], [65]],
        [[1], [33], [33]],
        [[7, 1, 33], [1, 5, 33], [7, 5, 33]],
        [[7, 5, 1], [7, 1, 3], [7, 5, 3]],
        [[2, 3, 4, 5], [1, 3, 1, 5], [2, 3, 4, 5]],
        [[1, 1], [1, 1], [1, 1]],
        [[0, 3], [1, 3], [0, 3]],
      ];
      for (const [as, bs, os] of cases) {
        const na = as.reduce((p, d) => p * d, 1), nb = bs.reduce((p, d) => p * d, 1), no = os.reduce((p, d) => p * d, 1);
        const a = rand(na), b = rand(nb, 0.5, 2);
        for (const op of ['add', 'sub', 'mul', 'div'] as const) {
          versusRef(be, `${op} ${as}|${bs}`, (bk, up) => {
            const o = out(bk, no);
            bk.binary(op, up(a), as, up(b), bs, o, os);
            return { o };
          });
        }
      }
      // out aliases a
      const a = rand(100), b = rand(100);
      const sa = put(be, a);
      be.binary('mul', sa, [100], put(be, b), [100], sa, [100]);
      close(get(be, sa), Array.from(a, (v, i) => Math.fround(v * b[i]!)), 'aliased mul');
    });

    test('reduce sum / max with argmax, maxBackward', () => {
      be.setIsa(isa);
      for (const [o, r, i] of [[1, 7, 1], [3, 33, 1], [2, 5, 7], [4, 129, 65], [1, 1, 1], [2, 1000, 3], [1, 3000, 1]]) {
        const x = rand(o! * r! * i!);
        x[Math.floor(x.length / 2)] = 5; // ties of the maximum: the first index wins
        x[x.length - 1] = 5;
        const dy = rand(o! * i!);
        versusRef(be, `reduce ${o}x${r}x${i}`, (b, up) => {
          const xs = up(x), s = out(b, o! * i!), m = out(b, o! * i!), am = b.alloc('i32', o! * i!), dx = out(b, x.length);
          b.reduce('sum', xs, o!, r!, i!, s);
          b.reduce('max', xs, o!, r!, i!, m, am);
          b.maxBackward(up(dy), am, dx, o!, r!, i!);
          const amf = out(b, o! * i!);
          b.cast(am, amf);
          return { s, m, amf, dx };
        }, 1e-5, 1e-6);
      }
      // NaN wins the max
      const x = Float32Array.from([1, NaN, 3, NaN]);
      const m = out(be, 1), am = be.alloc('i32', 1);
      be.reduce('max', put(be, x), 1, 4, 1, m, am);
      assert.ok(Number.isNaN(get(be, m)[0]!));
      assert.equal((be.readSync(am) as Int32Array)[0], 1);
    });

    test('softmax and log-softmax, forward and backward', () => {
      be.setIsa(isa);
      for (const [rows, cols] of [[1, 1], [7, 33], [5, 129], [3, 1000], [2, 7], [3, 5000]]) {
        const x = rand(rows! * cols!, -8, 8), dy = rand(rows! * cols!);
        x[0] = 1e4; // large logits stay exact
        if (cols === 5000) x.fill(-Infinity, cols, cols + 2500); // row 1: a whole 2048-wide chunk masked
        for (const log of [false, true]) {
          versusRef(be, `softmax ${rows}x${cols} log=${log}`, (b, up) => {
            const y = out(b, x.length), dx = out(b, x.length);
            b.softmax(up(x), y, rows!, cols!, log);
            b.softmaxBackward(y, up(dy), dx, rows!, cols!, log);
            return { y, dx };
          }, 1e-5, 1e-6);
        }
      }
    });

    test('layerNorm and rmsNorm, forward and backward, with and without affine', () => {
      be.setIsa(isa);
      for (const [rows, cols] of [[1, 1], [3, 7], [5, 33], [4, 65], [2, 129], [8, 768]]) {
        const x = rand(rows! * cols!, -2, 3), w = rand(cols!, 0.5, 1.5), bias = rand(cols!), dy = rand(rows! * cols!);
        for (const affine of [true, false]) {
          versusRef(be, `layerNorm ${rows}x${cols} affine=${affine}`, (b, up) => {
            const ws = affine ? up(w) : null, bs = affine ? up(bias) : null;
            const y = out(b, x.length), mean = out(b, rows!), rstd = out(b, rows!);
            const xs = up(x);
            b.layerNorm(xs, ws, bs, y, mean, rstd, rows!, cols!, 1e-5);
            const dx = out(b, x.length), dw = out(b, cols!), db = out(b, cols!);
            b.layerNormBackward(up(dy), xs, ws, mean, rstd, dx, affine ? dw : null, affine ? db : null, rows!, cols!);
            const r: Record<string, Storage> = { y, mean, rstd, dx };
            if (affine) Object.assign(r, { dw, db });
            return r;
          }, 2e-5, 2e-6);
          versusRef(be, `rmsNorm ${rows}x${cols} weight=${affine}`, (b, up) => {
            const ws = affine ? up(w) : null;
            const y = out(b, x.length), rstd = out(b, rows!);
            const xs = up(x);
            b.rmsNorm(xs, ws, y, rstd, rows!, cols!, 1e-6);
            const dx = out(b, x.length), dw = out(b, cols!);
            b.rmsNormBackward(up(dy), xs, ws, rstd, dx, affine ? dw : null, rows!, cols!);
            const r: Record<string, Storage> = { y, rstd, dx };
            if (affine) r.dw = dw;
            return r;
          }, 2e-5, 2e-6);
        }
      }
    });

    test('crossEntropy with ignoreIndex and label smoothing', () => {
      be.setIsa(isa);
      for (const [rows, cols] of [[1, 1], [7, 33], [5, 129], [3, 1000], [2, 9000]]) {
        const x = rand(rows! * cols!, -6, 6);
        if (cols === 9000) x[4500] = 30; // the max sits in a middle chunk
        const t = Int32Array.from({ length: rows! }, (_, i) => (i % 3 === 2 ? -100 : Math.floor(R(0, cols!))));
        for (const s of [0, 0.1]) {
          versusRef(be, `crossEntropy ${rows}x${cols} s=${s}`, (b, up) => {
            const xs = up(x), ts = up(t), loss = out(b, rows!), lse = out(b, rows!), dx = out(b, x.length);
            b.crossEntropy(xs, ts, loss, lse, rows!, cols!, -100, s);
            b.crossEntropyBackward(xs, ts, lse, dx, rows!, cols!, -100, s, 0.37);
            return { loss, lse, dx };
          }, 1e-5, 1e-6);
        }
      }
    });

    test('rope forward and inverse, partial rotary dims, in place', () => {
      be.setIsa(isa);
      for (const [B, H, T, D, rd] of [[1, 1, 1, 2, 2], [2, 3, 7, 8, 8], [1, 2, 33, 20, 12], [2, 2, 5, 64, 64]]) {
        const x = rand(B! * H! * T! * D!);
        const inv = Float32Array.from({ length: rd! / 2 }, (_, i) => Math.pow(10000, (-2 * i) / rd!));
        const pos = Int32Array.from({ length: B! * T! }, (_, i) => (i * 37) % 2048);
        for (const inverse of [false, true]) {
          versusRef(be, `rope ${B},${H},${T},${D},${rd} inverse=${inverse}`, (b, up) => {
            const y = out(b, x.length);
            b.rope(up(x), y, up(inv), up(pos), B!, H!, T!, D!, rd!, inverse);
            const z = up(x); // in place
            b.rope(z, z, up(inv), up(pos), B!, H!, T!, D!, rd!, inverse);
            return { y, z };
          }, 1e-5, 1e-6);
        }
      }
    });

    test('embedding and its scatter-add backward; bad ids throw', () => {
      be.setIsa(isa);
      for (const [n, dim, vocab] of [[1, 1, 1], [7, 33, 5], [65, 129, 17], [200, 64, 1000]]) {
        const table = rand(vocab! * dim!), dy = rand(n! * dim!);
        const ids = Int32Array.from({ length: n! }, () => Math.floor(R(0, vocab!)));
        versusRef(be, `embedding ${n},${dim},${vocab}`, (b, up) => {
          const y = out(b, n! * dim!), dt = out(b, vocab! * dim!);
          const is = up(ids);
          b.embedding(is, up(table), y, n!, dim!, vocab!);
          b.embeddingBackward(is, up(dy), dt, n!, dim!, vocab!);
          return { y, dt };
        });
      }
      const tab = put(be, rand(12)), y = out(be, 8);
      assert.throws(() => be.embedding(put(be, Int32Array.from([0, 3])), tab, y, 2, 4, 3), /id 3 at row 1 is outside \[0, 3\)/);
      assert.throws(() => be.embedding(put(be, Int32Array.from([-1, 0])), tab, y, 2, 4, 3), /id -1 at row 0/);
      assert.throws(() => be.embeddingBackward(put(be, Int32Array.from([0, 7])), y, tab, 2, 4, 3), /id 7 at row 1/);
      const lg = put(be, rand(6));
      assert.throws(
        () => be.crossEntropy(lg, put(be, Int32Array.from([1, 3])), out(be, 2), out(be, 2), 2, 3, -100, 0),
        /target 3 at row 1 is outside \[0, 3\)/,
      );
    });

    test('attention forward and backward: GQA, causal (tq < tk, tq > tk), key mask, dropout', () => {
      be.setIsa(isa);
      const cases: [number, number, number, number, number, number, boolean, boolean, number][] = [
        // B, Hq, Hkv, T, S, D, causal, mask, dropout
        [1, 1, 1, 1, 1, 1, false, false, 0],
        [2, 4, 2, 7, 13, 8, true, false, 0],
        [2, 4, 2, 13, 7, 8, true, true, 0], // tq > tk: the first rows see no key
        [1, 2, 1, 65, 65, 64, true, false, 0],
        [2, 3, 3, 33, 129, 20, false, true, 0],
        [1, 6, 2, 70, 70, 16, true, true, 0.2],
        [2, 2, 1, 17, 40, 64, false, false, 0.5],
        [1, 2, 2, 130, 130, 33, true, false, 0],
      ];
      for (const [B, Hq, Hkv, T, S, D, causal, useMask, p] of cases) {
        const args: AttentionArgs = { batch: B, headsQ: Hq, headsKV: Hkv, tq: T, tk: S, headDim: D, scale: 1 / Math.sqrt(D), causal, dropoutP: p, seed: 42 };
        const q = rand(B * Hq * T * D, -2, 2), k = rand(B * Hkv * S * D, -2, 2), v = rand(B * Hkv * S * D), dO = rand(B * Hq * T * D);
        // the mask hides every key of the last batch row when there are several rows
        const mask = Int32Array.from({ length: B * S }, (_, i) => (B > 1 && i >= (B - 1) * S ? 0 : i % 3 === 1 ? 0 : 1));
        versusRef(be, `attention ${[B, Hq, Hkv, T, S, D]} causal=${causal} mask=${useMask} p=${p}`, (b, up) => {
          const qs = up(q), ks = up(k), vs = up(v), ms = useMask ? up(mask) : null;
          const o = out(b, q.length), lse = out(b, B * Hq * T);
          b.attention(qs, ks, vs, ms, o, lse, args);
          const dq = out(b, q.length), dk = out(b, k.length), dv = out(b, v.length);
          b.attentionBackward(qs, ks, vs, ms, o, lse, up(dO), dq, dk, dv, args);
          return { o, lse, dq, dk, dv };
        }, 2e-4, 2e-5);
      }
    });

    test('dropout keeps exactly the elements whose dropoutUniform draw is >= p', () => {
      be.setIsa(isa);
      for (const n of [1, 7, 33, 1000, 100003]) {
        const x = rand(n);
        for (const p of [0, 0.1, 0.5, 0.9, 1]) {
          const y = out(be, n);
          be.dropout(put(be, x), y, p, 1234567);
          const got = get(be, y);
          for (let i = 0; i < n; i++) {
            const keep = dropoutUniform(1234567, i) >= p;
            const want = keep ? Math.fround(x[i]! * Math.fround(1 / (1 - p))) : 0;
            if (got[i] !== want) assert.fail(`dropout n=${n} p=${p}: element ${i} is ${got[i]}, expected ${want}`);
          }
        }
      }
    });

    test('adamw is bit-identical to the float32 op order of torch.optim.AdamW; sumSquares', () => {
      be.setIsa(isa);
      const sizes = [1, 7, 33, 20000];
      const ps = sizes.map((n) => rand(n)), gs = sizes.map((n) => rand(n));
      const ms = sizes.map((n) => rand(n, -0.1, 0.1)), vs = sizes.map((n) => rand(n, 0, 0.01));
      const wd = [0, 0.1, 0.01, 0.5];
      const args = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 3 };
      const st = (arrs: Float32Array[]) => arrs.map((a) => put(be, a));
      const P = st(ps), G = st(gs), M = st(ms), V = st(vs);
      be.adamw(P, G, M, V, wd, args);
      const f = Math.fround;
      const stepSize = f(-(args.lr / (1 - Math.pow(args.beta1, args.step))));
      const bc2 = f(Math.sqrt(1 - Math.pow(args.beta2, args.step)));
      const [b1, ob1, b2, ob2, eps] = [f(0.9), f(1 - 0.9), f(0.999), f(1 - 0.999), f(1e-8)];
      sizes.forEach((n, t) => {
        const gp = get(be, P[t]!), gm = get(be, M[t]!), gv = get(be, V[t]!);
        const decay = f(1 - args.lr * wd[t]!);
        for (let i = 0; i < n; i++) {
          const g = gs[t]![i]!;
          const p = f(ps[t]![i]! * decay);
          const m = f(f(ms[t]![i]! * b1) + f(ob1 * g));
          const v = f(f(vs[t]![i]! * b2) + f(f(ob2 * g) * g));
          const den = f(f(f(Math.sqrt(v)) / bc2) + eps);
          const pn = f(p + f(f(stepSize * m) / den));
          if (gp[i] !== pn || gm[i] !== m || gv[i] !== v) assert.fail(`adamw tensor ${t} element ${i}: ${gp[i]} vs ${pn}`);
        }
      });
      let want = 0;
      for (const a of ps) for (const x of a) want += x * x;
      const got = be.sumSquares(ps.map((a) => put(be, a)));
      assert.ok(Math.abs(got - want) <= 1e-12 * want, `sumSquares ${got} vs ${want}`);
    });
  });
}

// ---------- gemm: every ISA x every implementation, against plain loops in double ----------

function gemmRef(a: Float32Array, b: Float32Array, c0: Float32Array, g: GemmArgs, bias?: Float32Array): Float64Array {
  const c = Float64Array.from(c0);
  for (let bi = 0; bi < g.batch; bi++) {
    const ao = bi * g.strideA, bo = bi * g.strideB, co = bi * g.strideC;
    for (let i = 0; i < g.m; i++)
      for (let j = 0; j < g.n; j++) {
        let s = 0;
        for (let p = 0; p < g.k; p++) {
          const av = g.transA ? a[ao + p * g.m + i]! : a[ao + i * g.k + p]!;
          const bv = g.transB ? b[bo + j * g.k + p]! : b[bo + p * g.n + j]!;
          s += av * bv;
        }
        const old = g.beta === 0 ? 0 : g.beta * c[co + i * g.n + j]!;
        c[co + i * g.n + j] = g.alpha * s + old + (bias ? bias[j]! : 0);
      }
  }
  return c;
}

for (const isa of isas) {
  for (const impl of cpu?.hasBlas() ? (['blas', 'own'] as const) : (['own'] as const)) {
    test(`gemm isa=${isa} impl=${impl}: transposes, awkward sizes, batch strides, alpha/beta/bias`, { skip }, () => {
      const be = cpu!;
      be.setIsa(isa);
      be.setGemm(impl);
      const dims = [1, 7, 33, 65, 129];
      let count = 0;
      for (const m of dims)
        for (const n of dims)
          for (const k of [1, 7, 65, 300]) {
            const transA = count % 2 === 1, transB = count % 4 >= 2;
            const batch = count % 5 === 0 ? 3 : 1;
            const bcastB = count % 3 === 0;
            const g: GemmArgs = { batch, m, n, k, transA, transB, strideA: m * k, strideB: bcastB ? 0 : k * n, strideC: m * n, alpha: count % 7 === 0 ? 0.5 : 1, beta: count % 3 === 1 ? 1.5 : 0 };
            const a = rand(batch * m * k), b = rand(bcastB ? k * n : batch * k * n);
            const c0 = rand(batch * m * n);
            if (g.beta === 0) c0.fill(NaN); // beta = 0 must ignore NaN in C
            const bias = count % 4 === 1 ? rand(n) : undefined;
            const cs = put(be, c0);
            be.gemm(put(be, a), put(be, b), cs, g, bias ? put(be, bias) : undefined);
            close(get(be, cs), gemmRef(a, b, c0, g, bias), `gemm ${m}x${n}x${k} tA=${transA} tB=${transB} batch=${batch}`, 1e-5, 2e-6);
            count++;
          }
      // one bigger product, several cache blocks in every dimension
      const g: GemmArgs = { batch: 1, m: 301, n: 2100, k: 530, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 };
      const a = rand(g.m * g.k), b = rand(g.n * g.k), c0 = new Float32Array(g.m * g.n);
      const cs = put(be, c0);
      be.gemm(put(be, a), put(be, b), cs, g);
      close(get(be, cs), gemmRef(a, b, c0, g), 'gemm 301x2100x530', 1e-5, 5e-6);
      // k = 0: C = beta C + bias; many small batch items (the parallel-over-batch path)
      const k0: GemmArgs = { batch: 2, m: 3, n: 4, k: 0, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 12, alpha: 1, beta: 2 };
      const ck = rand(24), bk = rand(4), ks = put(be, ck);
      be.gemm(put(be, new Float32Array(1)), put(be, new Float32Array(1)), ks, k0, put(be, bk));
      close(get(be, ks), gemmRef(new Float32Array(0), new Float32Array(0), ck, k0, bk), 'gemm k=0');
      const many: GemmArgs = { batch: 64, m: 16, n: 24, k: 8, transA: true, transB: false, strideA: 128, strideB: 192, strideC: 384, alpha: 1, beta: 0 };
      const ma = rand(64 * 128), mb = rand(64 * 192), mc = new Float32Array(64 * 384), ms = put(be, mc);
      be.gemm(put(be, ma), put(be, mb), ms, many);
      close(get(be, ms), gemmRef(ma, mb, mc, many), 'gemm batch=64 small');
    });
  }
}

// ---------- bf16 (mixed-precision) gemm: operands rounded to bf16, sums in fp32 ----------

function bf16Round(x: Float32Array): Float32Array {
  const u = new Uint32Array(Float32Array.from(x).buffer);
  for (let i = 0; i < u.length; i++) u[i] = (((u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return new Float32Array(u.buffer);
}

for (const isa of isas) {
  test(`gemm bf16 isa=${isa}: equals the fp32 product of bf16-rounded operands (every layout, blocks, bias)`, { skip }, () => {
    const be = cpu!;
    be.setIsa(isa);
    let count = 0;
    for (const [m, n, k] of [[1, 1, 1], [2, 70, 100], [4, 33, 530], [7, 65, 33], [65, 129, 300], [13, 64, 1031], [301, 700, 530]] as const)
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const batch = count % 3 === 0 ? 2 : 1;
          const g: GemmArgs = { batch, m, n, k, transA, transB, strideA: m * k, strideB: count % 2 ? 0 : k * n, strideC: m * n, alpha: count % 5 === 0 ? 0.5 : 1, beta: count % 3 === 1 ? 1.5 : 0, bf16: true };
          const a = rand(batch * m * k), b = rand(g.strideB === 0 ? k * n : batch * k * n), c0 = rand(batch * m * n);
          const bias = count % 4 === 1 ? rand(n) : undefined;
          const cs = put(be, c0);
          be.gemm(put(be, a), put(be, b), cs, g, bias ? put(be, bias) : undefined);
          const got = get(be, cs);
          const what = `bf16 gemm ${m}x${n}x${k} tA=${transA} tB=${transB} batch=${batch}`;
          close(got, gemmRef(bf16Round(a), bf16Round(b), c0, g, bias), what, 1e-5, 5e-6);
          // Not the fp32 product: rounding the operands changes the result at bf16's precision.
          if (k >= 33) {
            const exact = gemmRef(a, b, c0, g, bias);
            let diff = 0;
            for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - exact[i]!));
            assert.ok(diff > 1e-4, `${what}: equals the fp32 product (max diff ${diff})`);
          }
          count++;
        }
  });
}

// ---------- whole-backend checks ----------

describe('cpu backend: determinism, data movement, errors', { skip }, () => {
  const be = cpu!;

  test('results do not depend on the thread count', () => {
    const threads = be.numThreads();
    const run = (): Float32Array[] => {
      const args: AttentionArgs = { batch: 2, headsQ: 4, headsKV: 2, tq: 100, tk: 100, headDim: 64, scale: 0.125, causal: true, dropoutP: 0.1, seed: 7 };
      const R2 = rng(99);
      const r = (n: number) => Float32Array.from({ length: n }, () => R2());
      const q = put(be, r(2 * 4 * 100 * 64)), k = put(be, r(2 * 2 * 100 * 64)), v = put(be, r(2 * 2 * 100 * 64));
      const o = out(be, 2 * 4 * 100 * 64), lse = out(be, 800);
      be.attention(q, k, v, null, o, lse, args);
      const dq = out(be, 2 * 4 * 100 * 64), dk = out(be, 2 * 2 * 100 * 64), dv = out(be, 2 * 2 * 100 * 64);
      be.attentionBackward(q, k, v, null, o, lse, put(be, r(2 * 4 * 100 * 64)), dq, dk, dv, args);
      be.setGemm('own');
      const c = out(be, 200 * 300);
      be.gemm(put(be, r(200 * 150)), put(be, r(150 * 300)), c, { batch: 1, m: 200, n: 300, k: 150, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
      const x = put(be, r(64 * 300)), y = out(be, 64 * 300), mean = out(be, 64), rstd = out(be, 64), dx = out(be, 64 * 300), dw = out(be, 300), db = out(be, 300);
      be.layerNorm(x, null, null, y, mean, rstd, 64, 300, 1e-5);
      be.layerNormBackward(put(be, r(64 * 300)), x, null, mean, rstd, dx, dw, db, 64, 300);
      return [o, lse, dq, dk, dv, c, dx, dw, db].map((s) => get(be, s));
    };
    be.setNumThreads(1);
    const one = run();
    be.setNumThreads(Math.max(2, threads));
    const many = run();
    be.setNumThreads(threads);
    one.forEach((a, i) => assert.deepEqual(a, many[i], `output ${i} differs between 1 and several threads`));
  });

  test('dropout_uniform is bit-identical to dropoutUniform, also past 2^32', () => {
    const addon = loadNativeAddon();
    for (const seed of [0, 1, 0x9e3779b9, 0xffffffff, 123456789]) {
      for (const idx of [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 2 ** 40 + 3, 2 ** 53 - 1]) {
        assert.equal(addon.dropoutUniform(seed, idx), dropoutUniform(seed, idx), `seed ${seed} index ${idx}`);
      }
    }
  });

  test('fill, cast (bf16 round to nearest even, NaN), stridedCopy', () => {
    versusRef(be, 'cast', (b, up) => {
      const x = up(Float32Array.from([1, 1.00390625, 1.01171875, -2.5, 3.4e38, Infinity, -Infinity, NaN, 1e-40, 65504.5, -0, 2.9e9, -3e9, 7.9]));
      const h = b.alloc('bf16', 14), back = out(b, 14), i = b.alloc('i32', 14), fi = out(b, 14), hb = b.alloc('bf16', 14), ib = b.alloc('i32', 14), fib = out(b, 14);
      b.cast(x, h);
      b.cast(h, back);
      b.cast(x, i);
      b.cast(i, fi);
      b.cast(i, hb);
      b.cast(hb, ib);
      b.cast(ib, fib);
      const f = out(b, 5), fiv = b.alloc('i32', 3), fh = b.alloc('bf16', 2), fiv2 = out(b, 3), fh2 = out(b, 2);
      b.fill(f, 0.1);
      b.fill(fiv, -7.9);
      b.cast(fiv, fiv2);
      b.fill(fh, 1.00390625);
      b.cast(fh, fh2);
      return { back, fi, fib, f, fiv2, fh2 };
    });
    const shape = [3, 4, 5];
    const src = rand(60);
    versusRef(be, 'stridedCopy', (b, up) => {
      const s = up(src);
      const t = out(b, 60);
      b.stridedCopy(s, 0, [20, 5, 1], shape, t, 0, [1, 3, 12]); // permute
      const bc = out(b, 60);
      b.stridedCopy(s, 7, [0, 1, 0], shape, bc, 0, [20, 5, 1]); // broadcast
      const ov = up(src);
      b.stridedCopy(ov, 0, [1], [50], ov, 10, [1]); // overlapping, same storage
      const rev = out(b, 10);
      b.stridedCopy(s, 9, [-1], [10], rev, 0, [1]); // negative stride
      return { t, bc, ov, rev };
    }, 0, 0);
  });

  test('bad sizes and arguments throw instead of crashing', () => {
    const a = put(be, rand(6)), small = out(be, 3);
    const g: GemmArgs = { batch: 1, m: 2, n: 3, k: 3, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 };
    assert.throws(() => be.gemm(a, put(be, rand(9)), small, g), /gemm: c has 3 elements, the call needs 6/);
    assert.throws(() => be.gemm(a, put(be, rand(9)), out(be, 12), { ...g, batch: 2, strideA: 6 }), /gemm: a has 6 elements/);
    assert.throws(() => be.unary('exp', a, small, 0), /unary: out has 3 elements/);
    assert.throws(() => be.softmax(a, out(be, 6), 2, 4, false), /softmax: x has 6 elements, the call needs 8/);
    assert.throws(() => be.layerNorm(a, null, null, out(be, 6), out(be, 1), out(be, 2), 2, 3, 1e-5), /mean has 1 elements/);
    assert.throws(() => be.binary('add', a, [2, 3], a, [3, 2], out(be, 6), [2, 3]), /do not broadcast/);
    assert.throws(() => be.stridedCopy(a, 1, [1], [6], out(be, 6), 0, [1]), /outside storage/);
    assert.throws(() => be.reduce('max', a, 1, 0, 6, out(be, 6)), /empty axis/);
    assert.throws(() => be.maxBackward(out(be, 1), put(be, Int32Array.from([5])), out(be, 3), 1, 3, 1), /argmax 5/);
    const args: AttentionArgs = { batch: 1, headsQ: 3, headsKV: 2, tq: 2, tk: 2, headDim: 1, scale: 1, causal: false, dropoutP: 0, seed: 0 };
    assert.throws(() => be.attention(a, a, a, null, out(be, 6), out(be, 6), args), /not a multiple of headsKV/);
    assert.throws(
      () => be.attention(a, a, a, null, out(be, 6), out(be, 6), { ...args, headsQ: 2, headsKV: 2, headDim: 2 }),
      /attention: q has 6 elements, the call needs 8/,
    );
    assert.throws(() => be.rope(a, out(be, 6), put(be, rand(1)), put(be, Int32Array.from([0])), 1, 1, 3, 2, 2, false), /positions has 1/);
    assert.throws(() => be.setIsa('sse9' as Isa), /unknown ISA/);
    assert.throws(() => be.setGemm('fast' as 'own'), /unknown GEMM/);
    assert.throws(() => be.adamw([a], [small], [a], [a], [0], { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1, step: 1 }), /at least params/);
    assert.throws(() => be.unary('exp', put(be, Int32Array.from([1])), small, 0), /must be f32/);
  });
});
