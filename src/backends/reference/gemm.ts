// Reference batched matrix product: C = alpha op(A) op(B) + beta C (+ bias), double accumulators,
// transposes and per-operand batch strides (0 broadcasts A or B across the batch).

import type { GemmArgs, Storage } from '../backend.js';
import { dim, f32, host } from './common.js';
import { bf16Bits, bf16Value } from '../bf16.js';

function roundedToBf16(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = bf16Value(bf16Bits(x[i]!));
  return out;
}

export function gemm(a: Storage, b: Storage, c: Storage, args: GemmArgs, bias?: Storage): void {
  const { transA, transB, alpha, beta } = args;
  const batch = dim(args.batch, 'gemm batch');
  const m = dim(args.m, 'gemm m');
  const n = dim(args.n, 'gemm n');
  const k = dim(args.k, 'gemm k');
  const sA = dim(args.strideA, 'gemm strideA');
  const sB = dim(args.strideB, 'gemm strideB');
  const sC = dim(args.strideC, 'gemm strideC');
  if (batch < 1) throw new Error(`gemm: batch must be >= 1, got ${batch}`);
  if (batch > 1 && sC < m * n) {
    throw new Error(`gemm: strideC ${sC} < m*n = ${m * n}: output matrices of the batch would overlap`);
  }
  const last = batch - 1;
  const as0 = f32(a, m * k === 0 ? 0 : last * sA + m * k, 'gemm A');
  const bs0 = f32(b, k * n === 0 ? 0 : last * sB + k * n, 'gemm B');
  const cs = f32(c, m * n === 0 ? 0 : last * sC + m * n, 'gemm C');
  const bv = bias ? f32(bias, n, 'gemm bias') : null;
  const hc = host(c, 'gemm C');
  if (hc === host(a, 'gemm A') || hc === host(b, 'gemm B')) throw new Error('gemm: C may not alias A or B');
  // Mixed precision: the operands rounded to bf16; the sums below stay exact-ish (double).
  const as = args.bf16 ? roundedToBf16(as0) : as0;
  const bs = args.bf16 ? roundedToBf16(bs0) : bs0;

  // Element (i, p) of op(A) is A[i*ia + p*pa]; element (p, j) of op(B) is B[p*pb + j*jb].
  const ia = transA ? 1 : k;
  const pa = transA ? m : 1;
  const pb = transB ? 1 : n;
  const jb = transB ? k : 1;
  const acc = new Float64Array(n);
  for (let bt = 0; bt < batch; bt++) {
    const a0 = bt * sA;
    const b0 = bt * sB;
    const c0 = bt * sC;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      if (!transB) {
        // Row-accumulate: acc[:] += A(i,p) * B[p,:] (contiguous in B).
        for (let p = 0; p < k; p++) {
          const aip = as[a0 + i * ia + p * pa]!;
          const brow = b0 + p * pb;
          for (let j = 0; j < n; j++) acc[j] += aip * bs[brow + j]!;
        }
      } else {
        // Dot products against rows of B (stored N x K, contiguous in p).
        for (let j = 0; j < n; j++) {
          let s = 0;
          const bcol = b0 + j * jb;
          for (let p = 0; p < k; p++) s += as[a0 + i * ia + p * pa]! * bs[bcol + p]!;
          acc[j] = s;
        }
      }
      const crow = c0 + i * n;
      for (let j = 0; j < n; j++) {
        let v = alpha === 0 ? 0 : alpha * acc[j]!; // BLAS: alpha = 0 does not read A or B
        if (beta !== 0) v += beta * cs[crow + j]!;
        if (bv) v += bv[j]!;
        cs[crow + j] = v;
      }
    }
  }
}
