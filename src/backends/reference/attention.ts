// Reference fused scaled-dot-product attention, forward and backward: causal (bottom-right aligned),
// grouped-query heads, optional key mask and probability dropout, strided operands (args.layout). One
// query row at a time (O(S) memory).

import type { AttentionArgs, AttentionStrides, Storage } from '../backend.js';
import { contiguousStrides, dropoutUniform } from '../backend.js';
import { dim, f32, i32 } from './common.js';

/** Start of row (b, h, t). */
const at = (l: AttentionStrides, b: number, h: number, t: number): number => l.offset + b * l.batch + h * l.head + t * l.token;

/** The storage of an operand [B, H, T, D] laid out by l, checked to hold every row. */
function strided(s: Storage, l: AttentionStrides, B: number, H: number, T: number, D: number, what: string): Float32Array {
  for (const [k, v] of Object.entries(l)) dim(v as number, `${what} layout ${k}`);
  const need = B * H * T * D === 0 ? 0 : at(l, B - 1, H - 1, T - 1) + D;
  return f32(s, need, what);
}

interface Views {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  mask: Int32Array | null;
  B: number;
  Hq: number;
  Hkv: number;
  T: number;
  S: number;
  D: number;
  group: number;
  lq: AttentionStrides;
  lk: AttentionStrides;
  lv: AttentionStrides;
  lo: AttentionStrides;
}

function views(what: string, q: Storage, k: Storage, v: Storage, keyMask: Storage | null, a: AttentionArgs): Views {
  const B = dim(a.batch, `${what} batch`);
  const Hq = dim(a.headsQ, `${what} headsQ`);
  const Hkv = dim(a.headsKV, `${what} headsKV`);
  const T = dim(a.tq, `${what} tq`);
  const S = dim(a.tk, `${what} tk`);
  const D = dim(a.headDim, `${what} headDim`);
  if (Hkv === 0 ? Hq !== 0 : Hq % Hkv !== 0) throw new Error(`${what}: headsQ ${Hq} is not a multiple of headsKV ${Hkv}`);
  if (!(a.dropoutP >= 0 && a.dropoutP < 1)) throw new Error(`${what}: dropoutP must be in [0, 1), got ${a.dropoutP}`);
  const kv = contiguousStrides(Hkv, S, D);
  const l = a.layout ?? { q: contiguousStrides(Hq, T, D), k: kv, v: kv, out: contiguousStrides(Hq, T, D) };
  return {
    q: strided(q, l.q, B, Hq, T, D, `${what} q`),
    k: strided(k, l.k, B, Hkv, S, D, `${what} k`),
    v: strided(v, l.v, B, Hkv, S, D, `${what} v`),
    mask: keyMask ? i32(keyMask, B * S, `${what} keyMask`) : null,
    B,
    Hq,
    Hkv,
    T,
    S,
    D,
    group: Hkv === 0 ? 1 : Hq / Hkv,
    lq: l.q,
    lk: l.k,
    lv: l.v,
    lo: l.out,
  };
}

/**
 * Scaled scores of query row (b, h, t) against every key into `score`; masked keys get -Infinity.
 * Returns the maximum visible score (-Infinity when no key is visible).
 */
function scoreRow(w: Views, a: AttentionArgs, b: number, h: number, t: number, score: Float64Array): number {
  const { q, k, mask, T, S, D, group } = w;
  const qo = at(w.lq, b, h, t);
  const kh = Math.floor(h / group);
  const lastVisible = a.causal ? t + (S - T) : S - 1;
  let mx = -Infinity;
  for (let s = 0; s < S; s++) {
    if (s > lastVisible || (mask && mask[b * S + s] === 0)) {
      score[s] = -Infinity;
      continue;
    }
    let dot = 0;
    const ko = at(w.lk, b, kh, s);
    for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
    const sc = a.scale * dot;
    score[s] = sc;
    if (sc > mx) mx = sc;
  }
  return mx;
}

export function attention(
  q: Storage,
  k: Storage,
  v: Storage,
  keyMask: Storage | null,
  out: Storage,
  lse: Storage,
  args: AttentionArgs,
): void {
  const w = views('attention', q, k, v, keyMask, args);
  const { B, Hq, T, S, D, group } = w;
  const os = strided(out, w.lo, B, Hq, T, D, 'attention out');
  const ls = f32(lse, B * Hq * T, 'attention lse');
  const p = args.dropoutP;
  const keepScale = 1 / (1 - p);
  const score = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const row = (b * Hq + h) * T + t; // of lse and the dropout index
        const oo = at(w.lo, b, h, t);
        const mx = scoreRow(w, args, b, h, t, score);
        if (mx === -Infinity) {
          ls[row] = -Infinity;
          os.fill(0, oo, oo + D);
          continue;
        }
        let sum = 0;
        for (let s = 0; s < S; s++) {
          const e = Math.exp(score[s]! - mx); // 0 for masked keys
          score[s] = e;
          sum += e;
        }
        ls[row] = mx + Math.log(sum);
        acc.fill(0);
        for (let s = 0; s < S; s++) {
          let prob = score[s]! / sum;
          if (prob === 0) continue;
          if (p > 0) prob = dropoutUniform(args.seed, row * S + s) >= p ? prob * keepScale : 0;
          const vo = at(w.lv, b, kh, s);
          for (let d = 0; d < D; d++) acc[d] += prob * w.v[vo + d]!;
        }
        for (let d = 0; d < D; d++) os[oo + d] = acc[d]!;
      }
    }
  }
}

export function attentionBackward(
  q: Storage,
  k: Storage,
  v: Storage,
  keyMask: Storage | null,
  out: Storage,
  lse: Storage,
  dOut: Storage,
  dq: Storage,
  dk: Storage,
  dv: Storage,
  args: AttentionArgs,
): void {
  const w = views('attentionBackward', q, k, v, keyMask, args);
  const { B, Hq, Hkv, T, S, D, group } = w;
  strided(out, w.lo, B, Hq, T, D, 'attentionBackward out'); // validated; probabilities are recomputed instead
  const ls = f32(lse, B * Hq * T, 'attentionBackward lse');
  const dos = strided(dOut, w.lo, B, Hq, T, D, 'attentionBackward dOut');
  const dqs = strided(dq, w.lq, B, Hq, T, D, 'attentionBackward dq');
  const dks = strided(dk, w.lk, B, Hkv, S, D, 'attentionBackward dk');
  const dvs = strided(dv, w.lv, B, Hkv, S, D, 'attentionBackward dv');
  const p = args.dropoutP;
  const keepScale = 1 / (1 - p);
  const prob = new Float64Array(S); // P[s] = softmax probability (before dropout)
  const dprob = new Float64Array(S); // dL/dP[s]
  const dqRow = new Float64Array(D);
  const dkAcc = new Float64Array(S * D); // dk, dv of one (b, kv head), summed over its query heads
  const dvAcc = new Float64Array(S * D);
  for (let b = 0; b < B; b++) {
    for (let kvh = 0; kvh < Hkv; kvh++) {
      dkAcc.fill(0);
      dvAcc.fill(0);
      for (let h = kvh * group; h < (kvh + 1) * group; h++) {
        for (let t = 0; t < T; t++) {
          const row = (b * Hq + h) * T + t;
          const ro = at(w.lo, b, h, t); // dOut row
          const qo = at(w.lq, b, h, t); // q and dq row
          const l = ls[row]!;
          dqRow.fill(0);
          if (l === -Infinity) {
            dqs.fill(0, qo, qo + D);
            continue;
          }
          scoreRow(w, args, b, h, t, prob);
          // P = exp(score - lse); A = P * keep / (1 - p) is what multiplied V.
          // dA[s] = dOut . v[s];  dP = dA * keep / (1 - p);  dScore = P * (dP - sum_s P dP).
          let sumPdP = 0;
          for (let s = 0; s < S; s++) {
            const ps = Math.exp(prob[s]! - l);
            prob[s] = ps;
            if (ps === 0) {
              dprob[s] = 0;
              continue;
            }
            const keep = p > 0 ? (dropoutUniform(args.seed, row * S + s) >= p ? keepScale : 0) : 1;
            const vo = at(w.lv, b, kvh, s);
            if (keep !== 0) {
              let dA = 0;
              for (let d = 0; d < D; d++) {
                dA += dos[ro + d]! * w.v[vo + d]!;
                dvAcc[s * D + d] += ps * keep * dos[ro + d]!;
              }
              dprob[s] = dA * keep;
            } else {
              dprob[s] = 0;
            }
            sumPdP += ps * dprob[s]!;
          }
          for (let s = 0; s < S; s++) {
            const ps = prob[s]!;
            if (ps === 0) continue;
            const ds = args.scale * ps * (dprob[s]! - sumPdP);
            if (ds === 0) continue;
            const ko = at(w.lk, b, kvh, s);
            for (let d = 0; d < D; d++) {
              dqRow[d] += ds * w.k[ko + d]!;
              dkAcc[s * D + d] += ds * w.q[qo + d]!;
            }
          }
          for (let d = 0; d < D; d++) dqs[qo + d] = dqRow[d]!;
        }
      }
      for (let s = 0; s < S; s++) {
        const ko = at(w.lk, b, kvh, s);
        const vo = at(w.lv, b, kvh, s);
        for (let d = 0; d < D; d++) {
          dks[ko + d] = dkAcc[s * D + d]!;
          dvs[vo + d] = dvAcc[s * D + d]!;
        }
      }
    }
  }
}
