// Rotary position embedding and fused scaled-dot-product attention (causal or bidirectional, key
// padding mask, grouped-query heads, dropout on probabilities), memory linear in sequence length.

import type { AttentionArgs } from '../../backends/backend.js';
import { record } from '../autograd.js';
import { defaultGenerator } from '../random.js';
import { Tensor, empty, shapeString } from '../tensor.js';
import { checkDType, commonBackend, fail } from './check.js';

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
}

/** Rotates x [B, H, T, D] by position (HF rotate_half convention). */
export function rope(x: Tensor, options: RopeOptions = {}): Tensor {
  checkDType('rope', 'x', x, 'f32');
  if (x.rank !== 4) fail('rope', `x must be [batch, heads, T, headDim], got ${shapeString(x.shape)}`);
  const [b, h, t, d] = x.shape as [number, number, number, number];
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
  backend.rope(x.storage, out.storage, invFreq.storage, positions.storage, b, h, t, d, rotaryDim, false);
  const result = record(out, 'rope', [x], [invFreq, positions], (dy, [f, p]) => {
    const dx = empty(dy.shape, 'f32', backend);
    backend.rope(dy.storage, dx.storage, f!.storage, p!.storage, b, h, t, d, rotaryDim, true);
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
}

/**
 * softmax(q k^T * scale + mask) v for q [B, Hq, T, D], k and v [B, Hkv, S, D]; Hq a multiple of Hkv.
 * Causal masking is aligned bottom-right, so T < S continues a KV cache of S - T tokens.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    checkDType('attention', name, t, 'f32');
    if (t.rank !== 4) fail('attention', `${name} must be [batch, heads, T, headDim], got ${shapeString(t.shape)}`);
  }
  const keyMask = options.keyMask ?? null;
  const backend = commonBackend('attention', q, k, v, keyMask);
  const [b, hq, tq, d] = q.shape as [number, number, number, number];
  const [bk, hkv, tk, dk] = k.shape as [number, number, number, number];
  const same = k.shape.every((s, i) => s === v.shape[i]);
  if (bk !== b || dk !== d || !same) {
    fail('attention', `q ${shapeString(q.shape)}, k ${shapeString(k.shape)} and v ${shapeString(v.shape)} do not fit [B,H,T,D]`);
  }
  if (hkv === 0 || hq % hkv !== 0) fail('attention', `query heads ${hq} are not a multiple of key/value heads ${hkv}`);
  if (keyMask) {
    checkDType('attention', 'keyMask', keyMask, 'i32');
    if (keyMask.size !== b * tk) fail('attention', `keyMask ${shapeString(keyMask.shape)} must be [${b}, ${tk}]`);
  }
  const p = options.dropout ?? 0;
  if (!(p >= 0 && p < 1)) fail('attention', `dropout ${p} must be in [0, 1)`);
  const args: AttentionArgs = {
    batch: b, headsQ: hq, headsKV: hkv, tq, tk, headDim: d,
    scale: options.scale ?? 1 / Math.sqrt(d),
    causal: options.causal ?? false,
    dropoutP: p,
    seed: p > 0 ? (options.seed ?? defaultGenerator.seed()) : 0,
  };
  const out = empty(q.shape, 'f32', backend);
  const lse = empty([b, hq, tq], 'f32', backend);
  backend.attention(q.storage, k.storage, v.storage, keyMask?.storage ?? null, out.storage, lse.storage, args);
  const saved = [q, k, v, out, lse, ...(keyMask ? [keyMask] : [])];
  const result = record(out, 'attention', [q, k, v], saved, (dOut, [sq, sk, sv, so, sl, sm]) => {
    const dq = empty(sq!.shape, 'f32', backend);
    const dk2 = empty(sk!.shape, 'f32', backend);
    const dv = empty(sv!.shape, 'f32', backend);
    backend.attentionBackward(
      sq!.storage, sk!.storage, sv!.storage, sm?.storage ?? null, so!.storage, sl!.storage, dOut.storage,
      dq.storage, dk2.storage, dv.storage, args,
    );
    return [dq, dk2, dv];
  });
  lse.dispose();
  return result;
}
