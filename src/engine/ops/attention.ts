// Rotary position embedding and fused scaled-dot-product attention (causal or bidirectional, key
// padding mask, grouped-query heads, dropout on probabilities), memory linear in sequence length.
// Heads are read and written in place through strides ('bthd' layout, packed QKV, KV cache capacity),
// so models need no split/merge copies.

import type { AttentionArgs, AttentionStrides, Backend } from '../../backends/backend.js';
import { record } from '../autograd.js';
import { defaultGenerator } from '../random.js';
import { Tensor, empty, shapeString } from '../tensor.js';
import { checkDType, commonBackend, fail } from './check.js';

/**
 * How heads lie in a 4-D tensor: 'bhtd' = [batch, heads, tokens, headDim] (heads split out, PyTorch's
 * SDPA layout), 'bthd' = [batch, tokens, heads, headDim] (a projection's [B, T, H*D] output reshaped, so
 * splitting and merging heads are free reshapes).
 */
export type HeadLayout = 'bhtd' | 'bthd';

/** Inverse frequencies of RoPE: 1 / theta^(2i/rotaryDim), computed in f32 as Hugging Face does. */
export function ropeInvFreq(rotaryDim: number, theta = 10000): Float32Array {
  const out = new Float32Array(rotaryDim / 2);
  // Round where PyTorch rounds: the exponent, theta^exponent, and the reciprocal are each f32.
  for (let i = 0; i < out.length; i++) out[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / rotaryDim)));
  return out;
}

export interface RopeOptions {
  /** Token positions: [T] shared by the batch, or [B, T]. Defaults to 0..T-1 (plus `offset`). */
  positions?: Tensor | readonly number[];
  offset?: number;
  /** Inverse frequencies (length rotaryDim/2); default from theta (covers rope_scaling done by the caller). */
  invFreq?: Float32Array;
  theta?: number;
  /** Dimensions rotated (the rest pass through); defaults to the head size. */
  rotaryDim?: number;
  /** 'bhtd' (default): x is [B, H, T, D]; 'bthd': x is [B, T, H, D], as a projection's output reshapes. */
  layout?: HeadLayout;
}

/** Rotates x [B, H, T, D] (or [B, T, H, D] with layout 'bthd') by position (HF rotate_half convention). */
export function rope(x: Tensor, options: RopeOptions = {}): Tensor {
  checkDType('rope', 'x', x, 'f32');
  const tokenMajor = options.layout === 'bthd';
  if (x.rank !== 4) fail('rope', `x must be [batch, ${tokenMajor ? 'T, heads' : 'heads, T'}, headDim], got ${shapeString(x.shape)}`);
  const [b, h, t, d] = (tokenMajor ? [x.shape[0], x.shape[2], x.shape[1], x.shape[3]] : x.shape) as [number, number, number, number];
  const rotaryDim = options.rotaryDim ?? d;
  if (rotaryDim % 2 !== 0 || rotaryDim > d || rotaryDim <= 0) fail('rope', `rotaryDim ${rotaryDim} must be even and in (0, ${d}]`);
  const invFreqHost = options.invFreq ?? ropeInvFreq(rotaryDim, options.theta ?? 10000);
  if (invFreqHost.length !== rotaryDim / 2) fail('rope', `invFreq has ${invFreqHost.length} entries, expected ${rotaryDim / 2}`);
  // Positions expand to [B*T] on the host: they are tiny and usually come from the host anyway.
  let pos: Int32Array;
  const given = options.positions;
  if (given instanceof Tensor) {
    checkDType('rope', 'positions', given, 'i32');
    pos = given.dataSync() as Int32Array;
  } else if (given) pos = Int32Array.from(given);
  else pos = Int32Array.from({ length: t }, (_, i) => i + (options.offset ?? 0));
  if (pos.length !== t && pos.length !== b * t) fail('rope', `positions have ${pos.length} entries, expected T=${t} or B*T=${b * t}`);
  if (pos.length === t && b > 1) {
    const full = new Int32Array(b * t);
    for (let i = 0; i < b; i++) full.set(pos, i * t);
    pos = full;
  }
  const backend = x.backend;
  const invFreq = empty([invFreqHost.length], 'f32', backend).keep();
  backend.write(invFreq.storage, invFreqHost);
  const positions = empty([pos.length], 'i32', backend).keep();
  backend.write(positions.storage, pos);
  const out = empty(x.shape, 'f32', backend);
  backend.rope(x.storage, out.storage, invFreq.storage, positions.storage, b, h, t, d, rotaryDim, false, tokenMajor);
  const result = record(out, 'rope', [x], [invFreq, positions], (dy, [f, p]) => {
    const dx = empty(dy.shape, 'f32', backend);
    backend.rope(dy.storage, dx.storage, f!.storage, p!.storage, b, h, t, d, rotaryDim, true, tokenMajor);
    return [dx];
  });
  invFreq.dispose();
  positions.dispose();
  return result;
}

export interface AttentionOptions {
  causal?: boolean;
  /** i32 [B, S]: nonzero where the key is a real token, 0 for padding. */
  keyMask?: Tensor | null;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
  /** Dropout on the attention probabilities (training only). */
  dropout?: number;
  seed?: number;
  /** Layout of q, k, v and the output (default 'bhtd'). */
  layout?: HeadLayout;
  /**
   * Attend to the first kvLength positions of k and v only (default: all): k and v may be KV-cache
   * buffers with spare capacity along the sequence axis, read in place. Their gradient is zero beyond.
   */
  kvLength?: number;
}

export interface PackedAttentionOptions extends Omit<AttentionOptions, 'layout' | 'kvLength'> {
  /** Query heads. */
  heads: number;
  /** Key/value heads (default heads). */
  kvHeads?: number;
  /**
   * Keys and values from these [B, capacity, Hkv, D] buffers ('bthd'), first `length` positions (a KV
   * cache that already holds this call's keys and values), instead of the k and v parts of qkv.
   */
  past?: { k: Tensor; v: Tensor; length: number };
}

/** One operand of the kernel: which op input holds it, and where its rows are. */
interface Operand {
  input: number;
  strides: AttentionStrides;
}

interface Fused {
  op: string;
  inputs: readonly Tensor[];
  q: Operand;
  k: Operand;
  v: Operand;
  outShape: readonly number[];
  out: AttentionStrides;
  dims: { b: number; hq: number; hkv: number; tq: number; tk: number; d: number };
}

/** Strides of [B, H, T, D] rows in a tensor of the given layout, whose sequence axis holds `cap` positions. */
function stridesOf(layout: HeadLayout, h: number, cap: number, d: number): AttentionStrides {
  return layout === 'bthd'
    ? { offset: 0, batch: cap * h * d, head: d, token: h * d }
    : { offset: 0, batch: h * cap * d, head: cap * d, token: d };
}

function checkMask(op: string, keyMask: Tensor | null, b: number, tk: number): void {
  if (!keyMask) return;
  checkDType(op, 'keyMask', keyMask, 'i32');
  if (keyMask.size !== b * tk) fail(op, `keyMask ${shapeString(keyMask.shape)} must be [${b}, ${tk}]`);
}

/**
 * Runs the kernel on operands that are views of the inputs and records one autograd node. Backward
 * allocates one gradient per input and lets the kernel write dq/dk/dv into their operands' places
 * (three regions of one buffer for a packed QKV); parts no operand covers are zero.
 */
function fusedAttention(f: Fused, options: Omit<AttentionOptions, 'layout' | 'kvLength'>, backend: Backend): Tensor {
  const { b, hq, hkv, tq, tk, d } = f.dims;
  const keyMask = options.keyMask ?? null;
  checkMask(f.op, keyMask, b, tk);
  const p = options.dropout ?? 0;
  if (!(p >= 0 && p < 1)) fail(f.op, `dropout ${p} must be in [0, 1)`);
  const args: AttentionArgs = {
    batch: b, headsQ: hq, headsKV: hkv, tq, tk, headDim: d,
    scale: options.scale ?? 1 / Math.sqrt(d),
    causal: options.causal ?? false,
    dropoutP: p,
    seed: p > 0 ? (options.seed ?? defaultGenerator.seed()) : 0,
    layout: { q: f.q.strides, k: f.k.strides, v: f.v.strides, out: f.out },
  };
  const x = f.inputs;
  const out = empty(f.outShape, 'f32', backend);
  const lse = empty([b, hq, tq], 'f32', backend);
  backend.attention(x[f.q.input]!.storage, x[f.k.input]!.storage, x[f.v.input]!.storage, keyMask?.storage ?? null, out.storage, lse.storage, args);
  // Elements of each input the kernel's gradient writes: the rest of a gradient must be zeroed.
  const covered = x.map(() => 0);
  covered[f.q.input] += b * hq * tq * d;
  covered[f.k.input] += b * hkv * tk * d;
  covered[f.v.input] += b * hkv * tk * d;
  const n = x.length;
  const result = record(out, f.op, x, [...x, out, lse, ...(keyMask ? [keyMask] : [])], (dOut, saved) => {
    const grads = saved.slice(0, n).map((t, i) => {
      const g = empty(t.shape, 'f32', backend);
      if (covered[i]! < t.size) backend.fill(g.storage, 0);
      return g;
    });
    const st = (o: Operand) => saved[o.input]!.storage;
    const gs = (o: Operand) => grads[o.input]!.storage;
    backend.attentionBackward(
      st(f.q), st(f.k), st(f.v), saved[n + 2]?.storage ?? null, saved[n]!.storage, saved[n + 1]!.storage, dOut.storage,
      gs(f.q), gs(f.k), gs(f.v), args,
    );
    return grads;
  });
  lse.dispose();
  return result;
}

/**
 * softmax(q k^T * scale + mask) v for q [B, Hq, T, D], k and v [B, Hkv, S, D]; Hq a multiple of Hkv.
 * With layout 'bthd': q [B, T, Hq, D], k and v [B, S, Hkv, D], output [B, T, Hq, D] (reshape it to
 * [B, T, Hq*D] for free). Causal masking is aligned bottom-right, so T < S continues a KV cache of S - T
 * tokens; kvLength reads only the first positions of k and v.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const layout = options.layout ?? 'bhtd';
  const bthd = layout === 'bthd';
  const want = bthd ? '[batch, T, heads, headDim]' : '[batch, heads, T, headDim]';
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    checkDType('attention', name, t, 'f32');
    if (t.rank !== 4) fail('attention', `${name} must be ${want}, got ${shapeString(t.shape)}`);
  }
  const backend = commonBackend('attention', q, k, v, options.keyMask);
  // [B, H, T, D] sizes whatever the layout
  const bhtd = (t: Tensor) => (bthd ? [t.shape[0], t.shape[2], t.shape[1], t.shape[3]] : t.shape) as [number, number, number, number];
  const [b, hq, tq, d] = bhtd(q);
  const [bk, hkv, cap, dk] = bhtd(k);
  const same = k.shape.every((s, i) => s === v.shape[i]);
  if (bk !== b || dk !== d || !same) {
    fail('attention', `q ${shapeString(q.shape)}, k ${shapeString(k.shape)} and v ${shapeString(v.shape)} do not fit ${want}`);
  }
  if (hkv === 0 || hq % hkv !== 0) fail('attention', `query heads ${hq} are not a multiple of key/value heads ${hkv}`);
  const tk = options.kvLength ?? cap;
  if (!Number.isInteger(tk) || tk < 0 || tk > cap) fail('attention', `kvLength ${tk} must be an integer in [0, ${cap}]`);
  const kv = stridesOf(layout, hkv, cap, d);
  return fusedAttention({
    op: 'attention', inputs: [q, k, v],
    q: { input: 0, strides: stridesOf(layout, hq, tq, d) }, k: { input: 1, strides: kv }, v: { input: 2, strides: kv },
    outShape: q.shape, out: stridesOf(layout, hq, tq, d),
    dims: { b, hq, hkv, tq, tk, d },
  }, options, backend);
}

/**
 * Attention straight from a fused QKV projection: qkv [B, T, (Hq + 2 Hkv) * D] holds each token's
 * query heads, then key heads, then value heads (GPT-2's c_attn output). Returns [B, T, Hq * D], the
 * merged heads. Nothing is split or merged by copying; the gradient of qkv is written by the kernel
 * into one buffer. With `past`, keys and values come from a KV cache instead (see the option).
 */
export function attentionPacked(qkv: Tensor, options: PackedAttentionOptions): Tensor {
  const op = 'attentionPacked';
  checkDType(op, 'qkv', qkv, 'f32');
  const hq = options.heads;
  const hkv = options.kvHeads ?? hq;
  if (!Number.isInteger(hq) || !Number.isInteger(hkv) || hkv <= 0 || hq % hkv !== 0) {
    fail(op, `query heads ${hq} are not a multiple of key/value heads ${hkv}`);
  }
  const width = qkv.shape[2] ?? 0;
  const d = width / (hq + 2 * hkv);
  if (qkv.rank !== 3 || !Number.isInteger(d) || d === 0) {
    fail(op, `qkv must be [batch, T, (${hq} + 2*${hkv}) * headDim], got ${shapeString(qkv.shape)}`);
  }
  const [b, t] = qkv.shape as [number, number, number];
  const past = options.past;
  const backend = commonBackend(op, qkv, past?.k, past?.v, options.keyMask);
  const row = (offset: number): AttentionStrides => ({ offset, batch: t * width, head: d, token: width });
  const out = stridesOf('bthd', hq, t, d);
  if (!past) {
    return fusedAttention({
      op, inputs: [qkv], q: { input: 0, strides: row(0) }, k: { input: 0, strides: row(hq * d) },
      v: { input: 0, strides: row((hq + hkv) * d) }, outShape: [b, t, hq * d], out, dims: { b, hq, hkv, tq: t, tk: t, d },
    }, options, backend);
  }
  const cap = past.k.shape[1] ?? 0;
  const fits = (x: Tensor) => x.rank === 4 && x.shape[0] === b && x.shape[1] === cap && x.shape[2] === hkv && x.shape[3] === d;
  if (!fits(past.k) || !fits(past.v)) {
    fail(op, `past k ${shapeString(past.k.shape)} and v ${shapeString(past.v.shape)} must be [${b}, capacity, ${hkv}, ${d}]`);
  }
  if (!Number.isInteger(past.length) || past.length < t || past.length > cap) {
    fail(op, `past length ${past.length} must be in [${t}, ${cap}] (the cache holds this call's keys too)`);
  }
  const kv = stridesOf('bthd', hkv, cap, d);
  return fusedAttention({
    op, inputs: [qkv, past.k, past.v], q: { input: 0, strides: row(0) }, k: { input: 1, strides: kv },
    v: { input: 2, strides: kv }, outShape: [b, t, hq * d], out, dims: { b, hq, hkv, tq: t, tk: past.length, d },
  }, options, backend);
}
