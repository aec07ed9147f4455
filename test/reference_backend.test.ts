// Tests of the pure-TypeScript reference backend: hand-computed cases for every kernel, and
// central finite differences (double-precision directional derivatives) for every backward kernel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionArgs, GemmArgs, Storage, UnaryOp } from '../src/backends/backend.js';
import { dropoutUniform } from '../src/backends/backend.js';
import { ReferenceBackend, erf, erfc } from '../src/backends/reference/index.js';
import { bf16Bits as f32ToBf16, bf16Value as bf16ToF32 } from '../src/backends/bf16.js';
import { uniformRng } from './backends.js';

const be = new ReferenceBackend();

// ---------- helpers ----------

function f32(data: ArrayLike<number>): Storage {
  const s = be.alloc('f32', data.length);
  be.write(s, Float32Array.from(data));
  return s;
}
function i32(data: ArrayLike<number>): Storage {
  const s = be.alloc('i32', data.length);
  be.write(s, Int32Array.from(data));
  return s;
}
function zeros(n: number): Storage {
  const s = be.alloc('f32', n);
  be.fill(s, 0);
  return s;
}
function rd(s: Storage): Float32Array {
  return be.readSync(s) as Float32Array;
}
function rdi(s: Storage): Int32Array {
  return be.readSync(s) as Int32Array;
}

const rng = uniformRng;
function randArr(r: (lo?: number, hi?: number) => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r(lo, hi);
  return a;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}[${i}]: ${a}, expected NaN`);
      continue;
    }
    if (a === e) continue; // also covers infinities
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a}, expected ${e}`);
  }
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Finite-difference check of gradients. For each input k in turn and a few random directions v,
 * compares grads[k] . (x+ - x-) with loss(x+) - loss(x-), where x+- = f32(x +- eps v) on input k only
 * (the true f32 displacement is used on both sides). The tolerance is relative, plus a term for the
 * f32 rounding noise of the forward, which grows with sum |grad * step| (cancellation).
 */
function fdCheck(
  what: string,
  inputs: Float32Array[],
  loss: (xs: Float32Array[]) => number,
  grads: Float32Array[],
  seed = 1,
  eps = 1e-3,
  rtol = 3e-3,
): void {
  const r = rng(seed);
  inputs.forEach((x, k) => {
    for (let trial = 0; trial < 2; trial++) {
      const xp = inputs.slice();
      const xm = inputs.slice();
      const p = (xp[k] = new Float32Array(x));
      const m = (xm[k] = new Float32Array(x));
      let analytic = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        const v = r();
        p[i] = x[i]! + eps * v;
        m[i] = x[i]! - eps * v;
        analytic += grads[k]![i]! * (p[i]! - m[i]!);
        scale += Math.abs(grads[k]![i]! * (p[i]! - m[i]!));
      }
      const numeric = loss(xp) - loss(xm);
      const tol = rtol * Math.max(Math.abs(numeric), Math.abs(analytic)) + 2e-4 * scale + 1e-9;
      if (process.env.FD_DEBUG) {
        const err = Math.abs(numeric - analytic);
        console.log(`FD ${what} input ${k}: err/tol ${(err / tol).toFixed(3)} rel ${(err / Math.abs(numeric)).toExponential(2)}`);
      }
      assert.ok(
        Math.abs(numeric - analytic) <= tol,
        `${what}, input ${k} (trial ${trial}): finite difference ${numeric}, analytic ${analytic}`,
      );
    }
  });
}

// ---------- memory ----------

test('alloc, write, read, free and the caching allocator', async () => {
  const b = new ReferenceBackend();
  const s = b.alloc('f32', 3);
  b.write(s, new Float32Array([1, 2, 3]));
  b.write(s, new Float32Array([9]), 2);
  assert.deepEqual(Array.from(b.readSync(s)), [1, 2, 9]);
  assert.deepEqual(Array.from(await b.read(s)), [1, 2, 9]);
  assert.equal(b.memory().liveCount, 1);
  assert.throws(() => b.write(s, new Int32Array([1])), /does not match/);
  assert.throws(() => b.write(s, new Float32Array(2), 2), /exceed/);
  b.free(s);
  assert.equal(b.memory().liveCount, 0);
  assert.ok(b.memory().cachedBytes > 0);
  assert.throws(() => b.readSync(s), /freed/);
  assert.throws(() => b.fill(s, 0), /freed/);
  await assert.rejects(b.read(s), /freed/);
  b.emptyCache();
  assert.equal(b.memory().cachedBytes, 0);
});

// ---------- data movement ----------

test('fill on every dtype', () => {
  const a = be.alloc('f32', 3);
  be.fill(a, 1.5);
  assert.deepEqual(Array.from(rd(a)), [1.5, 1.5, 1.5]);
  const b = be.alloc('i32', 2);
  be.fill(b, -7);
  assert.deepEqual(Array.from(rdi(b)), [-7, -7]);
  const c = be.alloc('bf16', 2);
  be.fill(c, 1);
  assert.deepEqual(Array.from(be.readSync(c)), [0x3f80, 0x3f80]);
});

test('bf16 rounding and round trip', () => {
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(-2), 0xc000);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -16), 0x3f81); // above the tie
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  assert.equal(f32ToBf16(-0), 0x8000);
  assert.equal(f32ToBf16(3.4028234663852886e38), 0x7f80); // max f32 rounds to inf
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
  // Every bf16 pattern survives bf16 -> f32 -> bf16 (NaNs stay NaN).
  const all = be.alloc('bf16', 65536);
  be.write(all, Uint16Array.from({ length: 65536 }, (_, i) => i));
  const wide = be.alloc('f32', 65536);
  const back = be.alloc('bf16', 65536);
  be.cast(all, wide);
  be.cast(wide, back);
  const w = rd(wide);
  const bb = be.readSync(back) as Uint16Array;
  for (let i = 0; i < 65536; i++) {
    const isNaN = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
    if (isNaN) assert.ok(Number.isNaN(w[i]!) && (bb[i]! & 0x7f80) === 0x7f80 && (bb[i]! & 0x7f) !== 0);
    else assert.equal(bb[i], i);
  }
  // f32 -> bf16 through the kernel rounds to nearest even.
  const x = f32([1 + 2 ** -8, 1 + 3 * 2 ** -8, -1.0078125, NaN]);
  const h = be.alloc('bf16', 4);
  be.cast(x, h);
  const hb = be.readSync(h) as Uint16Array;
  assert.deepEqual(Array.from(hb.slice(0, 3)), [0x3f80, 0x3f82, 0xbf81]);
  assert.ok(Number.isNaN(bf16ToF32(hb[3]!)));
});

test('cast between f32 and i32', () => {
  const x = f32([-2.7, 2.7, 0, 1e10, NaN]);
  const y = be.alloc('i32', 5);
  be.cast(x, y);
  assert.deepEqual(Array.from(rdi(y)), [-2, 2, 0, 2147483647, 0]);
  const z = be.alloc('f32', 2);
  be.cast(i32([16777217, -3]), z);
  assert.deepEqual(Array.from(rd(z)), [16777216, -3]);
  assert.throws(() => be.cast(x, be.alloc('i32', 4)), /sizes differ/);
});

test('stridedCopy: transpose, broadcast, offsets, rank 0, bounds', () => {
  const src = f32([0, 1, 2, 3, 4, 5]); // [2, 3]
  const dst = zeros(6);
  be.stridedCopy(src, 0, [1, 3], [3, 2], dst, 0, [2, 1]); // transpose to [3, 2]
  assert.deepEqual(Array.from(rd(dst)), [0, 3, 1, 4, 2, 5]);
  const bc = zeros(8);
  be.stridedCopy(src, 1, [0, 2], [2, 2], bc, 2, [3, 1]); // broadcast row [1, 3]
  assert.deepEqual(Array.from(rd(bc)), [0, 0, 1, 3, 0, 1, 3, 0]);
  const one = zeros(2);
  be.stridedCopy(src, 5, [], [], one, 1, []);
  assert.deepEqual(Array.from(rd(one)), [0, 5]);
  const ints = be.alloc('i32', 3);
  assert.throws(() => be.stridedCopy(i32([7, 8, 9]), 0, [-1], [3], ints, 0, [1]), /\[-2, 0\] fall outside/);
  const rev = zeros(3);
  be.stridedCopy(f32([7, 8, 9]), 2, [-1], [3], rev, 0, [1]);
  assert.deepEqual(Array.from(rd(rev)), [9, 8, 7]);
  // Overlapping copy within one storage behaves like a copy from a snapshot.
  const ov = f32([1, 2, 3, 4]);
  be.stridedCopy(ov, 0, [1], [3], ov, 1, [1]);
  assert.deepEqual(Array.from(rd(ov)), [1, 1, 2, 3]);
  assert.throws(() => be.stridedCopy(src, 1, [1, 3], [3, 2], dst, 0, [2, 1]), /outside storage/);
  assert.throws(() => be.stridedCopy(src, 0, [1], [3], be.alloc('i32', 3), 0, [1]), /dtypes differ/);
});

// ---------- elementwise ----------

test('erf and erfc are accurate to double precision', () => {
  const cases: [number, number][] = [
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3.5, 0.9999992569016276],
  ];
  for (const [x, v] of cases) {
    assert.ok(Math.abs(erf(x) - v) < 1e-15, `erf(${x})`);
    assert.ok(Math.abs(erf(-x) + v) < 1e-15, `erf(${-x})`);
  }
  assert.ok(Math.abs(erfc(3) / 2.209049699858544e-5 - 1) < 1e-13);
  assert.ok(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1) < 1e-13);
  assert.ok(Math.abs(erfc(-1) - 1.8427007929497148) < 1e-15);
});

test('unary forward values', () => {
  const xs = [-3, -0.5, 0, 0.5, 2];
  const run = (op: UnaryOp, x: number[], p = 0) => {
    const out = zeros(x.length);
    be.unary(op, f32(x), out, p);
    return rd(out);
  };
  const fr = (f: (x: number) => number, x: number[]) => x.map((v) => Math.fround(f(Math.fround(v))));
  close(run('neg', xs), fr((x) => -x, xs), 0, 'neg');
  close(run('exp', xs), fr(Math.exp, xs), 0, 'exp');
  close(run('log', [0.5, 2, 0]), [Math.fround(Math.log(0.5)), Math.fround(Math.log(2)), -Infinity], 0, 'log');
  close(run('sqrt', [4, 2, -1]), [2, Math.fround(Math.SQRT2), NaN], 0, 'sqrt');
  close(run('tanh', xs), fr(Math.tanh, xs), 0, 'tanh');
  close(run('sigmoid', [0, -1000, 1000]), [0.5, 0, 1], 0, 'sigmoid');
  close(run('relu', [-1, 0, 2, NaN]), [0, 0, 2, NaN], 0, 'relu');
  close(run('silu', [1]), [Math.fround(1 / (1 + Math.exp(-1)))], 0, 'silu');
  close(run('gelu', [1, -3, 0, -10]), [0.8413447460685429, -0.0040496940948904, 0, -7.6198530241604e-23].map(Math.fround), 1e-7, 'gelu');
  const gt = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  close(run('gelu_tanh', xs), fr(gt, xs), 2e-7, 'gelu_tanh');
  close(run('pow', [2, 3], 3), [8, 27], 0, 'pow');
  close(run('pow', [4], -0.5), [0.5], 0, 'pow');
  close(run('scale', [2, -1], 1.5), [3, -1.5], 0, 'scale');
  close(run('add_scalar', [2, -1], 0.5), [2.5, -0.5], 0, 'add_scalar');
  // out aliases x
  const x = f32([1, 4]);
  be.unary('sqrt', x, x, 0);
  assert.deepEqual(Array.from(rd(x)), [1, 2]);
  assert.throws(() => be.unary('exp', f32([1, 2]), zeros(3), 0), /differ in size/);
  assert.throws(() => be.unary('exp', i32([1]), zeros(1), 0), /expected f32/);
});

test('unaryBackward matches finite differences for every op', () => {
  const ops: [UnaryOp, number, number, number][] = [
    // op, param, lo, hi (domain of x)
    ['neg', 0, -2, 2],
    ['exp', 0, -2, 2],
    ['log', 0, 0.5, 2],
    ['sqrt', 0, 0.5, 2],
    ['tanh', 0, -2, 2],
    ['sigmoid', 0, -4, 4],
    ['relu', 0, -2, 2],
    ['silu', 0, -4, 4],
    ['gelu', 0, -4, 4],
    ['gelu_tanh', 0, -4, 4],
    ['pow', 2.5, 0.5, 2],
    ['pow', 3, -2, 2],
    ['pow', -1.5, 0.5, 2],
    ['scale', -0.7, -2, 2],
    ['add_scalar', 3, -2, 2],
  ];
  ops.forEach(([op, p, lo, hi], idx) => {
    const r = rng(100 + idx);
    const n = 16;
    const x = randArr(r, n, lo, hi);
    if (op === 'relu') for (let i = 0; i < n; i++) if (Math.abs(x[i]!) < 0.05) x[i] = 0.5; // away from the kink
    const dy = randArr(r, n);
    const xs = f32(x);
    const y = zeros(n);
    be.unary(op, xs, y, p);
    const dx = zeros(n);
    be.unaryBackward(op, xs, y, f32(dy), dx, p);
    const loss = ([xx]: Float32Array[]) => {
      const out = zeros(n);
      be.unary(op, f32(xx!), out, p);
      return dot(rd(out), dy);
    };
    fdCheck(`unaryBackward ${op}(${p})`, [x], loss, [rd(dx)], idx);
  });
  // Closed-form derivatives of the GELUs, checked pointwise.
  const xs = [-5, -2, -0.7, 0, 0.3, 1, 4];
  const c = Math.sqrt(2 / Math.PI);
  const gtGrad = (x: number) => {
    const th = Math.tanh(c * (x + 0.044715 * x ** 3));
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x);
  };
  const gGrad = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
  for (const [op, fn] of [['gelu_tanh', gtGrad], ['gelu', gGrad]] as const) {
    const g = zeros(xs.length);
    be.unaryBackward(op, f32(xs), zeros(xs.length), f32(xs.map(() => 1)), g, 0);
    close(rd(g), xs.map(fn), 1e-6, `${op} derivative`);
  }
  // pow with exponent 0 has a zero gradient, even at x = 0.
  const dx = zeros(2);
  be.unaryBackward('pow', f32([0, 2]), f32([1, 1]), f32([1, 1]), dx, 0);
  assert.deepEqual(Array.from(rd(dx)), [0, 0]);
});

test('binary broadcasting, aliasing and errors', () => {
  const a = f32([1, 2, 3, 4, 5, 6]); // [2, 3]
  const out = zeros(6);
  be.binary('add', a, [2, 3], f32([10, 20, 30]), [1, 3], out, [2, 3]);
  assert.deepEqual(Array.from(rd(out)), [11, 22, 33, 14, 25, 36]);
  be.binary('mul', f32([1, 2]), [2, 1], f32([1, 10, 100]), [1, 3], out, [2, 3]);
  assert.deepEqual(Array.from(rd(out)), [1, 10, 100, 2, 20, 200]);
  be.binary('sub', a, [2, 3], f32([1, 2]), [2, 1], out, [2, 3]);
  assert.deepEqual(Array.from(rd(out)), [0, 1, 2, 2, 3, 4]);
  be.binary('div', a, [2, 3], f32([2]), [1, 1], out, [2, 3]);
  close(rd(out), [0.5, 1, 1.5, 2, 2.5, 3], 0, 'div');
  // rank 3 with broadcasting in the middle axis
  const o3 = zeros(8);
  be.binary('add', f32([0, 1, 2, 3]), [2, 1, 2], f32([10, 20, 30, 40]), [1, 2, 2], o3, [2, 2, 2]);
  assert.deepEqual(Array.from(rd(o3)), [10, 21, 30, 41, 12, 23, 32, 43]);
  // rank 0
  const o0 = zeros(1);
  be.binary('mul', f32([3]), [], f32([4]), [], o0, []);
  assert.deepEqual(Array.from(rd(o0)), [12]);
  // out aliases a (not broadcast)
  const al = f32([1, 2, 3, 4, 5, 6]);
  be.binary('add', al, [2, 3], f32([1, 1, 1]), [1, 3], al, [2, 3]);
  assert.deepEqual(Array.from(rd(al)), [2, 3, 4, 5, 6, 7]);
  assert.throws(() => be.binary('add', a, [2, 3], f32([1, 2]), [1, 2], out, [2, 3]), /does not broadcast/);
  assert.throws(() => be.binary('add', a, [2, 3], f32([1, 2, 3]), [3], out, [2, 3]), /rank/);
  assert.throws(() => be.binary('add', a, [2, 3], a, [2, 3], zeros(5), [2, 3]), /needs 6/);
});

test('dropout keeps exactly the elements whose uniform draw is >= p', () => {
  const n = 1000;
  const x = f32(Array.from({ length: n }, (_, i) => i + 1));
  const out = zeros(n);
  be.dropout(x, out, 0.25, 42);
  const o = rd(out);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const keep = dropoutUniform(42, i) >= 0.25;
    assert.equal(o[i], keep ? Math.fround((i + 1) / 0.75) : 0);
    if (keep) kept++;
  }
  assert.ok(kept > 700 && kept < 800);
  be.dropout(x, out, 0, 42);
  assert.deepEqual(rd(out), rd(x));
});

// ---------- reductions ----------

test('reduce sum, max with first argmax, and maxBackward', () => {
  // x [outer=2, r=3, inner=2]
  const x = f32([1, 5, 3, 5, 3, 0, -1, -2, -3, -2, -1, -4]);
  const s = zeros(4);
  be.reduce('sum', x, 2, 3, 2, s);
  assert.deepEqual(Array.from(rd(s)), [7, 10, -5, -8]);
  const m = zeros(4);
  const am = be.alloc('i32', 4);
  be.reduce('max', x, 2, 3, 2, m, am);
  assert.deepEqual(Array.from(rd(m)), [3, 5, -1, -2]);
  assert.deepEqual(Array.from(rdi(am)), [1, 0, 0, 0]); // ties resolve to the first index
  const nan = zeros(1);
  be.reduce('max', f32([1, NaN, 2]), 1, 3, 1, nan, am);
  assert.ok(Number.isNaN(rd(nan)[0]!));
  assert.equal(rdi(am)[0], 1);
  const dx = f32(Array(12).fill(9));
  be.maxBackward(f32([1, 2, 3, 4]), i32([1, 0, 2, 1]), dx, 2, 3, 2);
  assert.deepEqual(Array.from(rd(dx)), [0, 2, 1, 0, 0, 0, 0, 0, 0, 4, 3, 0]);
  assert.throws(() => be.maxBackward(f32([1]), i32([3]), zeros(3), 1, 3, 1), /argmax 3/);
  assert.throws(() => be.reduce('sum', x, 2, 3, 3, s), /needs 18/);
});

// ---------- gemm ----------

function naiveGemm(a: Float32Array, b: Float32Array, c: Float32Array, g: GemmArgs, bias?: Float32Array): Float64Array {
  const out = Float64Array.from(c);
  for (let bt = 0; bt < g.batch; bt++) {
    for (let i = 0; i < g.m; i++) {
      for (let j = 0; j < g.n; j++) {
        let s = 0;
        for (let p = 0; p < g.k; p++) {
          const av = a[bt * g.strideA + (g.transA ? p * g.m + i : i * g.k + p)]!;
          const bv = b[bt * g.strideB + (g.transB ? j * g.k + p : p * g.n + j)]!;
          s += av * bv;
        }
        const ci = bt * g.strideC + i * g.n + j;
        out[ci] = g.alpha * s + (g.beta === 0 ? 0 : g.beta * c[ci]!) + (bias ? bias[j]! : 0);
      }
    }
  }
  return out;
}

test('gemm: hand case, every transpose combination, batch strides incl. 0, alpha/beta/bias', () => {
  const hand = zeros(4);
  const g1: GemmArgs = { batch: 1, m: 2, n: 2, k: 3, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 };
  be.gemm(f32([1, 2, 3, 4, 5, 6]), f32([1, 0, 0, 1, 1, 1]), hand, g1);
  assert.deepEqual(Array.from(rd(hand)), [4, 5, 10, 11]);
  const r = rng(7);
  const [m, n, k, batch] = [3, 4, 5, 2];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const [sA, sB] of [[m * k, k * n], [0, k * n], [m * k, 0]] as const) {
        for (const [alpha, beta, withBias] of [[1, 0, false], [0.5, 2, true], [-1, 1, false]] as const) {
          const g: GemmArgs = { batch, m, n, k, transA, transB, strideA: sA, strideB: sB, strideC: m * n, alpha, beta };
          const a = randArr(r, (sA === 0 ? 1 : batch) * m * k);
          const b = randArr(r, (sB === 0 ? 1 : batch) * k * n);
          const c = randArr(r, batch * m * n);
          const bias = withBias ? randArr(r, n) : undefined;
          const cs = f32(c);
          be.gemm(f32(a), f32(b), cs, g, bias ? f32(bias) : undefined);
          close(rd(cs), naiveGemm(a, b, c, g, bias), 1e-6, `gemm tA=${transA} tB=${transB} sA=${sA} sB=${sB} a=${alpha} b=${beta}`);
        }
      }
    }
  }
  // beta = 0 ignores NaN in C.
  const cn = f32([NaN, NaN, NaN, NaN]);
  be.gemm(f32([1, 2, 3, 4, 5, 6]), f32([1, 0, 0, 1, 1, 1]), cn, g1);
  assert.deepEqual(Array.from(rd(cn)), [4, 5, 10, 11]);
  // k = 0: C = beta C + bias.
  const c0 = f32([1, 2]);
  be.gemm(f32([]), f32([]), c0, { ...g1, m: 1, k: 0, beta: 3 }, f32([10, 20]));
  assert.deepEqual(Array.from(rd(c0)), [13, 26]);
  assert.throws(() => be.gemm(f32([1, 2, 3, 4, 5]), f32([1, 0, 0, 1, 1, 1]), hand, g1), /needs 6/);
  assert.throws(() => be.gemm(f32(Array(12).fill(1)), f32(Array(12).fill(1)), zeros(8), { ...g1, batch: 2, strideA: 6, strideB: 6 }), /overlap/);
});

// ---------- softmax ----------

test('softmax and log-softmax: values, large logits, finite differences', () => {
  const out = zeros(3);
  be.softmax(f32([1e4, 1e4 + 1, 1e4 - 1]), out, 1, 3, false);
  const e = [Math.exp(-1), 1, Math.exp(-2)];
  const z = e[0]! + e[1]! + e[2]!;
  close(rd(out), e.map((v) => v / z), 1e-7, 'softmax 1e4');
  be.softmax(f32([1e4, 1e4 + 1, 1e4 - 1]), out, 1, 3, true);
  close(rd(out), e.map((v) => Math.log(v / z)), 1e-6, 'log-softmax 1e4');
  const [rows, cols] = [3, 5];
  for (const log of [false, true]) {
    const r = rng(log ? 11 : 12);
    const x = randArr(r, rows * cols, -3, 3);
    const dy = randArr(r, rows * cols);
    const y = zeros(rows * cols);
    be.softmax(f32(x), y, rows, cols, log);
    const dx = zeros(rows * cols);
    be.softmaxBackward(y, f32(dy), dx, rows, cols, log);
    const loss = ([xx]: Float32Array[]) => {
      const o = zeros(rows * cols);
      be.softmax(f32(xx!), o, rows, cols, log);
      return dot(rd(o), dy);
    };
    fdCheck(`softmaxBackward log=${log}`, [x], loss, [rd(dx)]);
  }
});

// ---------- normalisation ----------

test('layerNorm: hand case and finite differences (affine and not)', () => {
  const out = zeros(3);
  const mean = zeros(1);
  const rstd = zeros(1);
  be.layerNorm(f32([1, 2, 3]), f32([1, 2, 1]), f32([0, 0, 5]), out, mean, rstd, 1, 3, 0);
  const inv = 1 / Math.sqrt(2 / 3);
  close(rd(out), [-inv, 0, 5 + inv], 1e-6, 'layerNorm');
  close(rd(mean), [2], 0, 'mean');
  close(rd(rstd), [inv], 1e-7, 'rstd');
  const [rows, cols, eps] = [3, 6, 1e-5];
  for (const affine of [true, false]) {
    const r = rng(affine ? 21 : 22);
    const x = randArr(r, rows * cols, -2, 2);
    const w = randArr(r, cols, 0.5, 1.5);
    const b = randArr(r, cols);
    const dy = randArr(r, rows * cols);
    const fwd = (xx: Float32Array, ww: Float32Array, bb: Float32Array) => {
      const o = zeros(rows * cols);
      be.layerNorm(f32(xx), affine ? f32(ww) : null, affine ? f32(bb) : null, o, zeros(rows), zeros(rows), rows, cols, eps);
      return rd(o);
    };
    const xs = f32(x);
    const ms = zeros(rows);
    const rs = zeros(rows);
    be.layerNorm(xs, affine ? f32(w) : null, affine ? f32(b) : null, zeros(rows * cols), ms, rs, rows, cols, eps);
    const dx = zeros(rows * cols);
    const dw = f32(Array(cols).fill(NaN)); // overwritten, not accumulated
    const db = f32(Array(cols).fill(NaN));
    be.layerNormBackward(f32(dy), xs, affine ? f32(w) : null, ms, rs, dx, affine ? dw : null, affine ? db : null, rows, cols);
    if (affine) {
      fdCheck('layerNormBackward', [x, w, b], ([xx, ww, bb]) => dot(fwd(xx!, ww!, bb!), dy), [rd(dx), rd(dw), rd(db)]);
    } else {
      fdCheck('layerNormBackward (no affine)', [x], ([xx]) => dot(fwd(xx!, w, b), dy), [rd(dx)]);
    }
  }
});

test('rmsNorm: hand case and finite differences (with and without weight)', () => {
  const out = zeros(2);
  const rstd = zeros(1);
  be.rmsNorm(f32([3, 4]), f32([1, 2]), out, rstd, 1, 2, 0);
  const inv = 1 / Math.sqrt(12.5);
  close(rd(out), [3 * inv, 8 * inv], 1e-7, 'rmsNorm');
  close(rd(rstd), [inv], 1e-7, 'rstd');
  const [rows, cols, eps] = [3, 6, 1e-6];
  for (const affine of [true, false]) {
    const r = rng(affine ? 31 : 32);
    const x = randArr(r, rows * cols, -2, 2);
    const w = randArr(r, cols, 0.5, 1.5);
    const dy = randArr(r, rows * cols);
    const fwd = (xx: Float32Array, ww: Float32Array) => {
      const o = zeros(rows * cols);
      be.rmsNorm(f32(xx), affine ? f32(ww) : null, o, zeros(rows), rows, cols, eps);
      return rd(o);
    };
    const xs = f32(x);
    const rs = zeros(rows);
    be.rmsNorm(xs, affine ? f32(w) : null, zeros(rows * cols), rs, rows, cols, eps);
    const dx = zeros(rows * cols);
    const dw = f32(Array(cols).fill(NaN));
    be.rmsNormBackward(f32(dy), xs, affine ? f32(w) : null, rs, dx, affine ? dw : null, rows, cols);
    if (affine) fdCheck('rmsNormBackward', [x, w], ([xx, ww]) => dot(fwd(xx!, ww!), dy), [rd(dx), rd(dw)]);
    else fdCheck('rmsNormBackward (no weight)', [x], ([xx]) => dot(fwd(xx!, w), dy), [rd(dx)]);
  }
});

// ---------- embedding ----------

test('embedding gather, scatter-add backward, bad ids', () => {
  const table = f32([0, 1, 10, 11, 20, 21]); // vocab 3, dim 2
  const out = zeros(6);
  be.embedding(i32([2, 0, 2]), table, out, 3, 2, 3);
  assert.deepEqual(Array.from(rd(out)), [20, 21, 0, 1, 20, 21]);
  const dT = f32(Array(6).fill(NaN));
  be.embeddingBackward(i32([2, 0, 2]), f32([1, 2, 3, 4, 5, 6]), dT, 3, 2, 3);
  assert.deepEqual(Array.from(rd(dT)), [3, 4, 0, 0, 6, 8]);
  assert.throws(() => be.embedding(i32([1, 3]), table, zeros(4), 2, 2, 3), /id 3 at row 1/);
  assert.throws(() => be.embedding(i32([-1]), table, zeros(2), 1, 2, 3), /id -1 at row 0/);
  assert.throws(() => be.embeddingBackward(i32([0, 5]), zeros(4), zeros(6), 2, 2, 3), /id 5 at row 1/);
});

// ---------- cross-entropy ----------

test('crossEntropy: hand case, ignoreIndex, smoothing, large logits, bad targets', () => {
  const losses = zeros(3);
  const lse = zeros(3);
  be.crossEntropy(f32([0, 0, 1e4, 1e4 - 1, 5, 5]), i32([0, 1, -100]), losses, lse, 3, 2, -100, 0);
  const l1 = Math.log(1 + Math.exp(-1));
  close(rd(losses), [Math.LN2, 1 + l1, 0], 1e-6, 'losses');
  close(rd(lse), [Math.LN2, 1e4 + l1, 5 + Math.LN2], 1e-7, 'lse');
  be.crossEntropy(f32([0, 0, 1e4, 1e4 - 1, 5, 5]), i32([0, 1, -100]), losses, lse, 3, 2, -100, 0.2);
  close(rd(losses), [Math.LN2, 0.8 * (1 + l1) + 0.2 * (l1 + 0.5), 0], 1e-6, 'smoothed losses');
  assert.throws(() => be.crossEntropy(f32([0, 0, 0, 0]), i32([0, 2]), losses, lse, 2, 2, -100, 0), /target 2 at row 1/);
  assert.throws(
    () => be.crossEntropyBackward(f32([0, 0]), i32([-1]), lse, zeros(2), 1, 2, -100, 0, 1),
    /target -1 at row 0/,
  );
  // Finite differences with smoothing and an ignored row.
  const [rows, cols, s, scale] = [4, 5, 0.1, 0.7];
  const r = rng(41);
  const x = randArr(r, rows * cols, -3, 3);
  const t = i32([3, -100, 0, 4]);
  const lossOf = ([xx]: Float32Array[]) => {
    const ls = zeros(rows);
    be.crossEntropy(f32(xx!), t, ls, zeros(rows), rows, cols, -100, s);
    return scale * rd(ls).reduce((a, b) => a + b, 0);
  };
  const ls = zeros(rows);
  const lse4 = zeros(rows);
  be.crossEntropy(f32(x), t, ls, lse4, rows, cols, -100, s);
  const dl = f32(Array(rows * cols).fill(NaN));
  be.crossEntropyBackward(f32(x), t, lse4, dl, rows, cols, -100, s, scale);
  const g = rd(dl);
  assert.deepEqual(Array.from(g.slice(cols, 2 * cols)), [0, 0, 0, 0, 0]);
  // Closed form: gradScale * (softmax - (1-s) onehot - s/V).
  const tv = rdi(t);
  const expect = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    if (tv[i] === -100) continue;
    let z = 0;
    for (let j = 0; j < cols; j++) z += Math.exp(x[i * cols + j]!);
    for (let j = 0; j < cols; j++) {
      const pr = Math.exp(x[i * cols + j]!) / z;
      expect[i * cols + j] = scale * (pr - (j === tv[i] ? 1 - s : 0) - s / cols);
    }
  }
  close(g, expect, 1e-6, 'crossEntropyBackward closed form');
  fdCheck('crossEntropyBackward', [x], lossOf, [g]);
});

// ---------- rope ----------

test('rope: hand case, partial rotary dims, inverse, finite differences', () => {
  // headDim 4, rotaryDim 2: pair (0, 1) rotated by pos * 1; dims 2, 3 copied.
  const out = zeros(8);
  be.rope(f32([1, 2, 3, 4, 5, 6, 7, 8]), out, f32([1]), i32([0, 1]), 1, 1, 2, 4, 2, false);
  const [c, sn] = [Math.cos(1), Math.sin(1)];
  close(rd(out), [1, 2, 3, 4, 5 * c - 6 * sn, 6 * c + 5 * sn, 7, 8], 1e-7, 'rope');
  const [B, H, T, D, R] = [2, 2, 3, 6, 4];
  const n = B * H * T * D;
  const r = rng(51);
  const x = randArr(r, n);
  const invFreq = f32([1, 0.1]);
  const pos = i32([0, 1, 2, 5, 7, 100]);
  const fwd = (xx: Float32Array, inverse: boolean) => {
    const o = zeros(n);
    be.rope(f32(xx), o, invFreq, pos, B, H, T, D, R, inverse);
    return rd(o);
  };
  close(fwd(fwd(x, false), true), x, 1e-6, 'rope inverse(rope(x))');
  // The backward of rope is the inverse rotation of dy.
  const dy = randArr(r, n);
  fdCheck('rope backward', [x], ([xx]) => dot(fwd(xx!, false), dy), [fwd(dy, true)]);
  fdCheck('rope inverse backward', [x], ([xx]) => dot(fwd(xx!, true), dy), [fwd(dy, false)]);
  // out may alias x.
  const al = f32(x);
  be.rope(al, al, invFreq, pos, B, H, T, D, R, false);
  close(rd(al), fwd(x, false), 0, 'rope in place');
  assert.throws(() => be.rope(f32(x), zeros(n), invFreq, pos, B, H, T, D, 3, false), /rotaryDim/);
});

// ---------- attention ----------

/** Naive attention with the full score matrix, in double (test oracle for the fused kernel). */
function naiveAttention(q: Float32Array, k: Float32Array, v: Float32Array, mask: Int32Array | null, a: AttentionArgs) {
  const { batch: B, headsQ: Hq, headsKV: Hkv, tq: T, tk: S, headDim: D } = a;
  const out = new Float64Array(B * Hq * T * D);
  const lse = new Float64Array(B * Hq * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / (Hq / Hkv));
      for (let t = 0; t < T; t++) {
        const row = (b * Hq + h) * T + t;
        const sc: number[] = [];
        for (let s = 0; s < S; s++) {
          const visible = (!a.causal || s <= t + S - T) && (!mask || mask[b * S + s] !== 0);
          let d = 0;
          for (let i = 0; i < D; i++) d += q[row * D + i]! * k[((b * Hkv + kh) * S + s) * D + i]!;
          sc.push(visible ? a.scale * d : -Infinity);
        }
        const mx = Math.max(...sc);
        if (mx === -Infinity) {
          lse[row] = -Infinity;
          continue;
        }
        const z = sc.reduce((acc, x) => acc + Math.exp(x - mx), 0);
        lse[row] = mx + Math.log(z);
        for (let s = 0; s < S; s++) {
          let p = Math.exp(sc[s]! - lse[row]!);
          if (a.dropoutP > 0) p = dropoutUniform(a.seed, row * S + s) >= a.dropoutP ? p / (1 - a.dropoutP) : 0;
          for (let i = 0; i < D; i++) out[row * D + i] += p * v[((b * Hkv + kh) * S + s) * D + i]!;
        }
      }
    }
  return { out, lse };
}

test('attention forward and backward: causal (tq < tk, tq > tk), GQA, key mask, dropout', () => {
  type Case = { name: string; a: AttentionArgs; mask?: number[] };
  const base = { batch: 2, headsQ: 2, headsKV: 2, tq: 3, tk: 3, headDim: 4, scale: 0.5, causal: false, dropoutP: 0, seed: 0 };
  const cases: Case[] = [
    { name: 'plain', a: { ...base } },
    { name: 'causal square', a: { ...base, causal: true } },
    { name: 'causal tq<tk', a: { ...base, tq: 2, tk: 5, causal: true } },
    { name: 'causal tq>tk', a: { ...base, tq: 4, tk: 2, causal: true } },
    { name: 'GQA', a: { ...base, headsQ: 4, headsKV: 2, tq: 3, tk: 4, causal: true } },
    { name: 'key mask', a: { ...base, tk: 4 }, mask: [1, 0, 1, 1, 0, 0, 0, 0] }, // batch 1 sees nothing
    { name: 'mask+causal+GQA', a: { ...base, headsQ: 2, headsKV: 1, tq: 2, tk: 4, causal: true }, mask: [1, 1, 0, 1, 0, 1, 1, 1] },
    { name: 'dropout', a: { ...base, headsQ: 4, headsKV: 2, tk: 5, dropoutP: 0.3, seed: 1234 } },
  ];
  cases.forEach(({ name, a, mask }, ci) => {
    const r = rng(60 + ci);
    const nq = a.batch * a.headsQ * a.tq * a.headDim;
    const nk = a.batch * a.headsKV * a.tk * a.headDim;
    const nl = a.batch * a.headsQ * a.tq;
    const q = randArr(r, nq, -1.5, 1.5);
    const k = randArr(r, nk, -1.5, 1.5);
    const v = randArr(r, nk);
    const dOut = randArr(r, nq);
    const km = mask ? i32(mask) : null;
    const fwd = (qq: Float32Array, kk: Float32Array, vv: Float32Array) => {
      const o = zeros(nq);
      const l = zeros(nl);
      be.attention(f32(qq), f32(kk), f32(vv), km, o, l, a);
      return { o, l };
    };
    const { o, l } = fwd(q, k, v);
    const ref = naiveAttention(q, k, v, mask ? Int32Array.from(mask) : null, a);
    close(rd(o), ref.out, 1e-6, `${name} out`);
    close(rd(l), ref.lse, 1e-6, `${name} lse`);
    const dq = f32(Array(nq).fill(NaN));
    const dk = f32(Array(nk).fill(NaN));
    const dv = f32(Array(nk).fill(NaN));
    be.attentionBackward(f32(q), f32(k), f32(v), km, o, l, f32(dOut), dq, dk, dv, a);
    const [gq, gk, gv] = [rd(dq), rd(dk), rd(dv)];
    for (const [g, nm] of [[gq, 'dq'], [gk, 'dk'], [gv, 'dv']] as const) {
      assert.ok(g.every(Number.isFinite), `${name}: ${nm} is finite`);
    }
    // Rows without a visible key: zero output, lse -Infinity, zero dq.
    const lv = rd(l);
    const ov = rd(o);
    for (let row = 0; row < nl; row++) {
      if (lv[row] !== -Infinity) continue;
      for (let d = 0; d < a.headDim; d++) {
        assert.equal(ov[row * a.headDim + d], 0);
        assert.equal(gq[row * a.headDim + d], 0);
      }
    }
    fdCheck(`attention ${name}`, [q, k, v], ([qq, kk, vv]) => dot(rd(fwd(qq!, kk!, vv!).o), dOut), [gq, gk, gv], ci);
  });
  // A row with no visible key really is -Infinity / 0.
  const l = zeros(4);
  const o = zeros(4);
  be.attention(f32([1, 1, 1, 1]), f32([1, 1]), f32([1, 1]), null, o, l,
    { batch: 1, headsQ: 1, headsKV: 1, tq: 4, tk: 1, headDim: 1, scale: 1, causal: true, dropoutP: 0, seed: 0 });
  assert.deepEqual(Array.from(rd(l)), [-Infinity, -Infinity, -Infinity, 1]);
  assert.deepEqual(Array.from(rd(o)), [0, 0, 0, 1]);
  assert.throws(() => be.attention(f32([1]), f32([1]), f32([1]), null, zeros(3), zeros(3),
    { batch: 1, headsQ: 3, headsKV: 2, tq: 1, tk: 1, headDim: 1, scale: 1, causal: false, dropoutP: 0, seed: 0 }), /multiple/);
});

// ---------- optimiser ----------

test('adamw matches the PyTorch formula over several steps; sumSquares', () => {
  const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.999, 1e-8, 0.1];
  const p = f32([1, -2]);
  const q = f32([0.5]);
  const m = [zeros(2), zeros(1)];
  const v = [zeros(2), zeros(1)];
  let ep = [1, -2];
  let em = [0, 0];
  let ev = [0, 0];
  const grads = [[0.1, -0.3], [0.2, 0.05], [-0.4, 0.1]];
  grads.forEach((g, i) => {
    const step = i + 1;
    be.adamw([p, q], [f32(g), f32([g[0]!])], [m[0]!, m[1]!], [v[0]!, v[1]!], [wd, 0], { lr, beta1: b1, beta2: b2, eps, step });
    ep = ep.map((x, j) => x * (1 - lr * wd));
    em = em.map((x, j) => b1 * x + (1 - b1) * g[j]!);
    ev = ev.map((x, j) => b2 * x + (1 - b2) * g[j]! ** 2);
    ep = ep.map((x, j) => x - (lr / (1 - b1 ** step)) * em[j]! / (Math.sqrt(ev[j]!) / Math.sqrt(1 - b2 ** step) + eps));
  });
  close(rd(p), ep, 1e-6, 'adamw params');
  close(rd(m[0]!), em, 1e-6, 'adamw m');
  close(rd(v[0]!), ev, 1e-6, 'adamw v');
  assert.throws(() => be.adamw([p], [zeros(3)], [m[0]!], [v[0]!], [0], { lr, beta1: b1, beta2: b2, eps, step: 1 }), /grad has 3/);
  assert.equal(be.sumSquares([f32([1, 2]), f32([3])]), 14);
  assert.equal(be.sumSquares([f32([0.1])]), Math.fround(0.1) ** 2);
});
