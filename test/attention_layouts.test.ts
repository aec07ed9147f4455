// Strided attention operands (AttentionArgs.layout): the reference backend against its own contiguous
// form, the native kernels against the reference at every ISA level (packed QKV, [B, T, H, D], a KV
// cache with spare capacity, GQA, causal T < S, key mask, dropout), and the engine ops built on them
// (layout 'bthd', kvLength, attentionPacked with and without `past`) against the copy-based forms.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionArgs, AttentionLayout, AttentionStrides, Backend, Storage } from '../src/backends/backend.js';
import { contiguousStrides } from '../src/backends/backend.js';
import { ReferenceBackend } from '../src/backends/reference/index.js';
import { tryCreateCpuBackend, type Isa } from '../src/backends/cpu/index.js';
import * as L from '../src/index.js';
import { assertClose, backendConfigs, uniformRng } from './backends.js';

const ref = new ReferenceBackend();
const probe = tryCreateCpuBackend();
const cpu = probe instanceof Error ? null : probe;

const rng = uniformRng;
const R = rng(777);
const rand = (n: number, lo = -1, hi = 1): Float32Array => Float32Array.from({ length: n }, () => R(lo, hi));

/** Untouched elements of a strided storage: NaN in inputs (a read of one would show), this in outputs. */
const SENTINEL = 7.25;

interface Case {
  name: string;
  dims: [number, number, number, number, number, number]; // B, Hq, Hkv, T, S, D
  causal: boolean;
  mask: boolean;
  p: number;
  /** Layout and storage sizes of q, k, v, out; `packed` puts q, k, v (and dq, dk, dv) in one storage. */
  place: (B: number, Hq: number, Hkv: number, T: number, S: number, D: number) => { layout: AttentionLayout; sizes: [number, number, number, number]; packed: boolean };
}

const bthd = (H: number, cap: number, D: number, offset = 0): AttentionStrides => ({ offset, batch: cap * H * D, head: D, token: H * D });
const bhtd = (H: number, cap: number, D: number, offset = 0): AttentionStrides => ({ offset, batch: H * cap * D, head: cap * D, token: D });

function packedPlace(B: number, Hq: number, Hkv: number, T: number, S: number, D: number) {
  const W = (Hq + 2 * Hkv) * D;
  const row = (offset: number): AttentionStrides => ({ offset, batch: T * W, head: D, token: W });
  assert.equal(T, S);
  return {
    layout: { q: row(0), k: row(Hq * D), v: row((Hq + Hkv) * D), out: bthd(Hq, T, D) },
    sizes: [B * T * W, 0, 0, B * T * Hq * D] as [number, number, number, number],
    packed: true,
  };
}

const CASES: Case[] = [
  { name: 'packed qkv causal', dims: [2, 3, 3, 13, 13, 8], causal: true, mask: false, p: 0, place: packedPlace },
  { name: 'packed qkv GQA mask dropout', dims: [2, 4, 2, 33, 33, 20], causal: true, mask: true, p: 0.2, place: packedPlace },
  { name: 'packed qkv D=64 T=70', dims: [1, 2, 2, 70, 70, 64], causal: false, mask: false, p: 0, place: packedPlace },
  {
    name: 'bthd GQA causal T<S mask', dims: [2, 4, 2, 7, 19, 16], causal: true, mask: true, p: 0,
    place: (B, Hq, Hkv, T, S, D) => ({
      layout: { q: bthd(Hq, T, D), k: bthd(Hkv, S, D), v: bthd(Hkv, S, D), out: bthd(Hq, T, D) },
      sizes: [B * T * Hq * D, B * S * Hkv * D, B * S * Hkv * D, B * T * Hq * D], packed: false,
    }),
  },
  {
    name: 'bthd cache capacity 40 > S, offsets, dropout', dims: [2, 2, 1, 3, 29, 33], causal: true, mask: true, p: 0.3,
    place: (B, Hq, Hkv, T, S, D) => ({
      layout: { q: bthd(Hq, T, D, 3), k: bthd(Hkv, 40, D), v: bthd(Hkv, 40, D, 5), out: bthd(Hq, T, D, 11) },
      sizes: [B * T * Hq * D + 3, B * 40 * Hkv * D, B * 40 * Hkv * D + 5, B * T * Hq * D + 11], packed: false,
    }),
  },
  {
    name: 'bhtd cache capacity 130 > S, decode T=1', dims: [2, 6, 2, 1, 100, 64], causal: true, mask: true, p: 0,
    place: (B, Hq, Hkv, T, S, D) => ({
      layout: { q: contiguousStrides(Hq, T, D), k: bhtd(Hkv, 130, D), v: bhtd(Hkv, 130, D), out: contiguousStrides(Hq, T, D) },
      sizes: [B * Hq * T * D, B * Hkv * 130 * D, B * Hkv * 130 * D, B * Hq * T * D], packed: false,
    }),
  },
];

type Op = [AttentionStrides, number, number];

interface Result { o: Float32Array; lse: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array }

/** Rows of a [B, H, T, D] operand copied between a contiguous array and a strided one. */
function moveRows(l: AttentionStrides, B: number, H: number, T: number, D: number, fn: (dense: number, strided: number) => void): void {
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const s = l.offset + b * l.batch + h * l.head + t * l.token;
        for (let d = 0; d < D; d++) fn(((b * H + h) * T + t) * D + d, s + d);
      }
}

function put(be: Backend, data: Float32Array | Int32Array): Storage {
  const s = be.alloc(data instanceof Float32Array ? 'f32' : 'i32', data.length);
  be.write(s, data);
  return s;
}

/** Runs forward + backward on contiguous operands (layout absent), or strided ones, returning contiguous results. */
function run(be: Backend, c: Case, strided: boolean, data: Float32Array[], mask: Int32Array): Result {
  const [B, Hq, Hkv, T, S, D] = c.dims;
  const [q, k, v, dO] = data as [Float32Array, Float32Array, Float32Array, Float32Array];
  const args: AttentionArgs = { batch: B, headsQ: Hq, headsKV: Hkv, tq: T, tk: S, headDim: D, scale: 1 / Math.sqrt(D), causal: c.causal, dropoutP: c.p, seed: 9 };
  const ms = c.mask ? put(be, mask) : null;
  const lse = be.alloc('f32', B * Hq * T);
  if (!strided) {
    const [qs, ks, vs] = [q, k, v].map((x) => put(be, x)) as [Storage, Storage, Storage];
    const o = be.alloc('f32', q.length), dq = be.alloc('f32', q.length), dk = be.alloc('f32', k.length), dv = be.alloc('f32', v.length);
    be.attention(qs, ks, vs, ms, o, lse, args);
    be.attentionBackward(qs, ks, vs, ms, o, lse, put(be, dO), dq, dk, dv, args);
    const rd = (s: Storage) => be.readSync(s) as Float32Array;
    return { o: rd(o), lse: rd(lse), dq: rd(dq), dk: rd(dk), dv: rd(dv) };
  }
  const { layout, sizes, packed } = c.place(B, Hq, Hkv, T, S, D);
  const l = layout;
  // [strides, heads, length] of each operand
  const Q: Op = [l.q, Hq, T], K: Op = [l.k, Hkv, S], V: Op = [l.v, Hkv, S], O: Op = [l.out, Hq, T];
  const scatter = (x: Float32Array, [st, H, len]: Op, n: number, into?: Float32Array) => {
    const host = into ?? new Float32Array(n).fill(NaN);
    moveRows(st, B, H, len, D, (i, j) => (host[j] = x[i]!));
    return host;
  };
  let qs: Storage, ks: Storage, vs: Storage;
  if (packed) {
    const host = scatter(q, Q, sizes[0]);
    scatter(k, K, 0, host);
    scatter(v, V, 0, host);
    qs = ks = vs = put(be, host);
  } else {
    qs = put(be, scatter(q, Q, sizes[0]));
    ks = put(be, scatter(k, K, sizes[1]));
    vs = put(be, scatter(v, V, sizes[2]));
  }
  const filled = (n: number) => put(be, new Float32Array(n).fill(SENTINEL));
  const o = filled(sizes[3]);
  const sa = { ...args, layout: l };
  be.attention(qs, ks, vs, ms, o, lse, sa);
  const dOs = put(be, scatter(dO, O, sizes[3]));
  const dq = filled(sizes[0]);
  const dk = packed ? dq : filled(sizes[1]);
  const dv = packed ? dq : filled(sizes[2]);
  be.attentionBackward(qs, ks, vs, ms, o, lse, dOs, dq, dk, dv, sa);
  // Reads an operand back as a dense array and checks that elements outside `covers` kept the sentinel.
  const gather = (s: Storage, op: Op, n: number, name: string, covers: Op[]) => {
    const host = be.readSync(s) as Float32Array;
    const dense = new Float32Array(n);
    moveRows(op[0], B, op[1], op[2], D, (i, j) => (dense[i] = host[j]!));
    const touched = new Uint8Array(host.length);
    for (const [st, H, len] of covers) moveRows(st, B, H, len, D, (_, j) => (touched[j] = 1));
    if (covers.length) {
      for (let j = 0; j < host.length; j++) if (!touched[j]) assert.equal(host[j], SENTINEL, `${c.name} ${name}: element ${j} outside the layout was written`);
    }
    return dense;
  };
  return {
    o: gather(o, O, q.length, 'o', [O]),
    lse: be.readSync(lse) as Float32Array,
    // packed: dq, dk, dv share one storage, checked once all three are read
    dq: gather(dq, Q, q.length, 'dq', packed ? [] : [Q]),
    dk: gather(dk, K, k.length, 'dk', packed ? [] : [K]),
    dv: gather(dv, V, v.length, 'dv', packed ? [Q, K, V] : [V]),
  };
}

function inputs(c: Case): { data: Float32Array[]; mask: Int32Array } {
  const [B, Hq, Hkv, T, S, D] = c.dims;
  const data = [rand(B * Hq * T * D, -2, 2), rand(B * Hkv * S * D, -2, 2), rand(B * Hkv * S * D), rand(B * Hq * T * D)];
  const mask = Int32Array.from({ length: B * S }, (_, i) => (i % 5 === 2 ? 0 : 1));
  return { data, mask };
}

function compare(got: Result, want: Result, what: string, rtol: number, atol: number): void {
  for (const key of ['o', 'lse', 'dq', 'dk', 'dv'] as const) {
    const lse = key === 'lse';
    // lse rows with no visible key are -Infinity on both sides
    const g = lse ? got[key].map((x) => (x === -Infinity ? -1e9 : x)) : got[key];
    const w = lse ? want[key].map((x) => (x === -Infinity ? -1e9 : x)) : want[key];
    assertClose(g, w, `${what} ${key}`, rtol, atol);
  }
}

describe('strided attention: reference', () => {
  for (const c of CASES) {
    test(`${c.name}: the layout equals the contiguous call`, () => {
      const { data, mask } = inputs(c);
      compare(run(ref, c, true, data, mask), run(ref, c, false, data, mask), c.name, 1e-6, 1e-7);
    });
  }

  test('a layout reaching outside its storage is an error', () => {
    const l = contiguousStrides(1, 2, 2);
    const args: AttentionArgs = { batch: 1, headsQ: 1, headsKV: 1, tq: 2, tk: 2, headDim: 2, scale: 1, causal: false, dropoutP: 0, seed: 0 };
    const s4 = () => put(ref, rand(4));
    assert.throws(() => ref.attention(s4(), s4(), s4(), null, s4(), s4(), { ...args, layout: { q: l, k: { ...l, token: 3 }, v: l, out: l } }), /k: storage has 4 elements, needs 5/);
    assert.throws(() => ref.attention(s4(), s4(), s4(), null, s4(), s4(), { ...args, layout: { q: l, k: l, v: l, out: { ...l, offset: -1 } } }), /out layout offset must be a non-negative integer/);
  });
});

const ISAS: Isa[] = ['avx512', 'avx2', 'portable'];
const isas = cpu ? ISAS.slice(ISAS.indexOf(cpu.bestIsa())) : [];

describe('strided attention: native against the reference', { skip: cpu ? false : 'native addon unavailable' }, () => {
  for (const isa of isas) {
    test(`isa=${isa}: packed QKV, bthd, cache capacity, GQA, causal T < S, mask, dropout`, () => {
      cpu!.setIsa(isa);
      for (const c of CASES) {
        const { data, mask } = inputs(c);
        compare(run(cpu!, c, true, data, mask), run(ref, c, false, data, mask), `${isa} ${c.name}`, 2e-4, 2e-5);
      }
    });
  }

  test('rope with tokenMajor ([B, T, H, D]) equals the reference, and the [B, H, T, D] form permuted', () => {
    const [B, H, T, D, rd] = [2, 3, 5, 12, 8];
    const x = rand(B * T * H * D);
    const inv = Float32Array.from({ length: rd / 2 }, (_, i) => Math.pow(10000, (-2 * i) / rd));
    const pos = Int32Array.from({ length: B * T }, (_, i) => (i * 13) % 50);
    // x as [B, H, T, D]
    const xh = new Float32Array(x.length);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) xh.set(x.subarray(((b * T + t) * H + h) * D, ((b * T + t) * H + h + 1) * D), ((b * H + h) * T + t) * D);
    const ropeOn = (be: Backend, data: Float32Array, tokenMajor: boolean, inverse: boolean) => {
      const y = be.alloc('f32', data.length);
      be.rope(put(be, data), y, put(be, inv), put(be, pos), B, H, T, D, rd, inverse, tokenMajor);
      return be.readSync(y) as Float32Array;
    };
    for (const inverse of [false, true]) {
      const want = ropeOn(ref, x, true, inverse);
      const viaHeads = ropeOn(ref, xh, false, inverse);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
        assertClose(want.subarray(((b * T + t) * H + h) * D, ((b * T + t) * H + h + 1) * D), viaHeads.subarray(((b * H + h) * T + t) * D, ((b * H + h) * T + t + 1) * D), `rope row ${b},${t},${h}`, 0, 0);
      }
      assertClose(ropeOn(cpu!, x, true, inverse), want, `native rope tokenMajor inverse=${inverse}`, 1e-5, 1e-6);
    }
  });

  test('a layout reaching outside its storage is a clear error', () => {
    cpu!.setIsa(cpu!.bestIsa());
    const l = contiguousStrides(1, 2, 2);
    const args: AttentionArgs = { batch: 1, headsQ: 1, headsKV: 1, tq: 2, tk: 2, headDim: 2, scale: 1, causal: false, dropoutP: 0, seed: 0 };
    const s4 = () => put(cpu!, rand(4));
    const bad = (layout: AttentionLayout) => () => cpu!.attention(s4(), s4(), s4(), null, s4(), s4(), { ...args, layout });
    assert.throws(bad({ q: l, k: { ...l, token: 3 }, v: l, out: l }), /attention: k has 4 elements, the call needs 5 \(its layout\)/);
    assert.throws(bad({ q: l, k: l, v: l, out: { ...l, offset: 1 } }), /attention: out has 4 elements, the call needs 5/);
    assert.throws(bad({ q: { ...l, batch: -4 }, k: l, v: l, out: l }), /must not hold negative/);
    const dq = put(cpu!, rand(4));
    assert.throws(
      () => cpu!.attentionBackward(s4(), s4(), s4(), null, s4(), s4(), s4(), dq, s4(), s4(), { ...args, layout: { q: { ...l, head: 9, batch: 9, offset: 2 }, k: l, v: l, out: l } }),
      /attentionBackward: q has 4 elements, the call needs 6/,
    );
  });
});

// ---- engine ops ----

/** Values and gradients of fn's inputs for a fixed upstream gradient. */
function valueAndGrads(values: Float32Array[], shapes: number[][], fn: (xs: L.Tensor[]) => L.Tensor, seed: number): Float32Array[] {
  return L.scope(() => {
    const xs = values.map((v, i) => L.tensor(v, shapes[i]!, { requiresGrad: true }));
    const y = fn(xs);
    const g = new L.Generator(seed);
    const w = L.tensor(Float32Array.from({ length: y.size }, () => g.normal()), y.shape);
    L.sum(L.mul(y, w)).backward();
    return [y.dataSync() as Float32Array, ...xs.map((x) => x.grad!.dataSync() as Float32Array)];
  });
}

const toBhtd = (x: L.Tensor) => L.permute(x, [0, 2, 1, 3]);
const mask2 = (b: number, s: number) => L.tensor(Int32Array.from({ length: b * s }, (_, i) => (i % 4 === 3 ? 0 : 1)), [b, s], { dtype: 'i32' });

for (const config of backendConfigs().filter((c) => c.name === 'reference' || c.name.endsWith('gemm=own'))) {
  describe(`attention layouts on ${config.name}`, () => {
    const backend = config.create();
    const [B, Hq, Hkv, T, D] = [2, 4, 2, 5, 8];
    const opts = { causal: true, dropout: 0.25, seed: 5 };

    test("layout 'bthd' equals the permuted 'bhtd' form (values and gradients)", () => {
      L.setBackend(backend);
      const g = new L.Generator(3);
      const shapes = [[B, T, Hq, D], [B, T, Hkv, D], [B, T, Hkv, D]];
      const vals = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b) }, () => g.normal()));
      const keyMask = mask2(B, T).keep();
      const direct = valueAndGrads(vals, shapes, ([q, k, v]) => L.attention(q!, k!, v!, { ...opts, keyMask, layout: 'bthd' }), 1);
      const copied = valueAndGrads(vals, shapes, ([q, k, v]) => toBhtd(L.attention(toBhtd(q!), toBhtd(k!), toBhtd(v!), { ...opts, keyMask })), 1);
      direct.forEach((a, i) => assertClose(a, copied[i]!, `output/grad ${i}`, 1e-5, 1e-6));
      keyMask.dispose();
    });

    test('attentionPacked equals split heads + attention + merge (values and d(qkv))', () => {
      L.setBackend(backend);
      const g = new L.Generator(4);
      const W = (Hq + 2 * Hkv) * D;
      const vals = [Float32Array.from({ length: B * T * W }, () => g.normal())];
      const keyMask = mask2(B, T).keep();
      const packed = valueAndGrads(vals, [[B, T, W]], ([x]) => L.attentionPacked(x!, { ...opts, keyMask, heads: Hq, kvHeads: Hkv }), 2);
      const split = valueAndGrads(vals, [[B, T, W]], ([x]) => {
        const part = (from: number, h: number) => L.reshape(L.slice(x!, 2, from * D, (from + h) * D), [B, T, h, D]);
        const y = L.attention(toBhtd(part(0, Hq)), toBhtd(part(Hq, Hkv)), toBhtd(part(Hq + Hkv, Hkv)), { ...opts, keyMask });
        return L.reshape(toBhtd(y), [B, T, Hq * D]);
      }, 2);
      packed.forEach((a, i) => assertClose(a, split[i]!, `output/grad ${i}`, 1e-5, 1e-6));
      keyMask.dispose();
    });

    test('kvLength and past read a cache with spare capacity; gradients are zero beyond', () => {
      L.setBackend(backend);
      const g = new L.Generator(5);
      const [S, cap, t] = [6, 9, 2];
      const qv = Float32Array.from({ length: B * t * Hq * D }, () => g.normal());
      const kvs = [0, 1].map(() => Float32Array.from({ length: B * cap * Hkv * D }, () => g.normal()));
      const shapes = [[B, t, Hq, D], [B, cap, Hkv, D], [B, cap, Hkv, D]];
      const inCache = valueAndGrads([qv, ...kvs], shapes, ([q, k, v]) => L.attention(q!, k!, v!, { causal: true, layout: 'bthd', kvLength: S }), 6);
      const sliced = valueAndGrads([qv, ...kvs], shapes, ([q, k, v]) => L.attention(q!, L.slice(k!, 1, 0, S), L.slice(v!, 1, 0, S), { causal: true, layout: 'bthd' }), 6);
      inCache.forEach((a, i) => assertClose(a, sliced[i]!, `output/grad ${i}`, 1e-5, 1e-6));
      // attentionPacked reading keys/values from the same buffers
      const W = (Hq + 2 * Hkv) * D;
      const qkv = new Float32Array(B * t * W);
      for (let r = 0; r < B * t; r++) qkv.set(qv.subarray(r * Hq * D, (r + 1) * Hq * D), r * W);
      const viaPast = L.scope(() => {
        const [k, v] = kvs.map((x) => L.tensor(x, [B, cap, Hkv, D]));
        return L.attentionPacked(L.tensor(qkv, [B, t, W]), { heads: Hq, kvHeads: Hkv, causal: true, past: { k: k!, v: v!, length: S } }).dataSync();
      });
      assertClose(viaPast, inCache[0]!, 'attentionPacked with past', 1e-5, 1e-6);
    });

    test('shape errors name the op and the expected layout', () => {
      L.setBackend(backend);
      L.scope(() => {
        const x = L.zeros([1, 2, 3, 4]);
        assert.throws(() => L.attention(x, x, x, { kvLength: 4 }), /kvLength 4 must be an integer in \[0, 3\]/);
        assert.throws(() => L.attentionPacked(L.zeros([1, 2, 10]), { heads: 2 }), /qkv must be \[batch, T, \(2 \+ 2\*2\) \* headDim\]/);
        assert.throws(() => L.attentionPacked(L.zeros([1, 2, 12]), { heads: 2, past: { k: x, v: x, length: 1 } }), /past k \[1,2,3,4\]/);
      });
    });
  });
}
