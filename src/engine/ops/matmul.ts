// Matrix products: batched matmul with transpose flags and batch broadcasting, and linear
// (x W^T + b, the Hugging Face weight layout [out, in]) with the bias fused into the GEMM.

import type { Backend } from '../../backends/backend.js';
import { record } from '../autograd.js';
import { getMatmulPrecision } from '../engine.js';
import { Tensor, empty, shapeSize, shapeString } from '../tensor.js';
import { broadcastShapes, checkDType, commonBackend, fail } from './check.js';
import { broadcastRaw, sumToRaw } from './reduce.js';

export interface MatmulOptions {
  /** Use a with its last two axes swapped. */
  transA?: boolean;
  /** Use b with its last two axes swapped. */
  transB?: boolean;
}

interface Plan {
  batchShape: number[];
  m: number;
  n: number;
  k: number;
}

function plan(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Plan {
  if (a.rank < 2 || b.rank < 2) {
    fail('matmul', `operands need at least 2 axes, got a ${shapeString(a.shape)} and b ${shapeString(b.shape)}`);
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) {
    fail(
      'matmul',
      `inner sizes differ: a ${shapeString(a.shape)}${transA ? '^T' : ''} has ${k}, b ${shapeString(b.shape)}${transB ? '^T' : ''} has ${kb}`,
    );
  }
  const batchShape = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return { batchShape, m, n, k };
}

/** Raw batched GEMM (no autograd): c = op(a) op(b), broadcasting batch axes. */
function gemmRaw(backend: Backend, a: Tensor, b: Tensor, transA: boolean, transB: boolean, bf16: boolean): Tensor {
  const { batchShape, m, n, k } = plan(a, b, transA, transB);
  const batch = shapeSize(batchShape);
  const out = empty([...batchShape, m, n], 'f32', backend);
  const aBatch = shapeSize(a.shape.slice(0, -2));
  const bBatch = shapeSize(b.shape.slice(0, -2));
  if (batch === 0 || m === 0 || n === 0) return out;
  // b shared by every batch item and a not transposed: one GEMM with the batch folded into M.
  if (bBatch === 1 && !transA) {
    backend.gemm(a.storage, b.storage, out.storage, {
      batch: 1, m: aBatch * m, n, k, transA: false, transB, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0, bf16,
    });
    return out;
  }
  // Each side is either one matrix (stride 0) or a full batch; partial broadcasts are materialised.
  const expand = (t: Tensor, tb: number): [Tensor, number] => {
    if (tb === 1) return [t, 0];
    if (tb === batch) return [t, shapeSize(t.shape.slice(-2))];
    const full = broadcastRaw(t, [...padBatch(t.shape.slice(0, -2), batchShape.length), ...t.shape.slice(-2)], [...batchShape, ...t.shape.slice(-2)]);
    return [full, shapeSize(t.shape.slice(-2))];
  };
  const [ea, sa] = expand(a, aBatch);
  const [eb, sb] = expand(b, bBatch);
  backend.gemm(ea.storage, eb.storage, out.storage, {
    batch, m, n, k, transA, transB, strideA: sa, strideB: sb, strideC: m * n, alpha: 1, beta: 0, bf16,
  });
  if (ea !== a) ea.dispose();
  if (eb !== b) eb.dispose();
  return out;
}

function padBatch(shape: readonly number[], rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

/** Sums a gradient over the batch axes that `shape` broadcast (a no-op copy when none). */
function reduceBatch(g: Tensor, shape: readonly number[]): Tensor {
  if (g.size === shapeSize(shape)) {
    const v = new Tensor(g.buf().retain(), shape, g.dtype);
    g.dispose();
    return v;
  }
  const r = sumToRaw(g, shape);
  g.dispose();
  return r;
}

/**
 * Gradient of a 2-D b shared by every batch item of a (a GPT-2 Conv1D weight, x [B, T, K] @ W [K, N]):
 * one GEMM over all B*T rows instead of a per-item product and a sum over the batch.
 */
function sharedWeightGrad(backend: Backend, a: Tensor, dc: Tensor, transB: boolean, bf16: boolean): Tensor {
  const k = a.shape[a.rank - 1]!;
  const n = dc.shape[dc.rank - 1]!;
  const rows = a.size / Math.max(1, k);
  const common = { batch: 1, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0, transA: true, transB: false, bf16 };
  // dB [K, N] = A^T dC, or dB [N, K] = dC^T A when b is stored transposed; rows is the inner size.
  const out = empty(transB ? [n, k] : [k, n], 'f32', backend);
  if (rows === 0) backend.fill(out.storage, 0);
  else if (transB) backend.gemm(dc.storage, a.storage, out.storage, { ...common, m: n, n: k, k: rows });
  else backend.gemm(a.storage, dc.storage, out.storage, { ...common, m: k, n, k: rows });
  return out;
}

/** Batched matrix product of the last two axes, batch axes broadcast (torch.matmul for rank >= 2). */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  checkDType('matmul', 'a', a, 'f32');
  checkDType('matmul', 'b', b, 'f32');
  const backend = commonBackend('matmul', a, b);
  const bf16 = getMatmulPrecision() === 'bf16';
  const out = gemmRaw(backend, a, b, transA, transB, bf16);
  const aShape = a.shape;
  const bShape = b.shape;
  return record(out, 'matmul', [a, b], [a, b], (dc, [sa, sb]) => {
    // C = op(A) op(B); see docs/ARCHITECTURE.md for the four transpose cases.
    const da = transA ? gemmRaw(backend, sb!, dc, transB, true, bf16) : gemmRaw(backend, dc, sb!, false, !transB, bf16);
    const db = bShape.length === 2 && !transA
      ? sharedWeightGrad(backend, sa!, dc, transB, bf16)
      : transB ? gemmRaw(backend, dc, sa!, true, transA, bf16) : gemmRaw(backend, sa!, dc, !transA, false, bf16);
    return [reduceBatch(da, aShape), reduceBatch(db, bShape)];
  });
}

export interface LinearOpOptions {
  /**
   * 'out-in' (default): W is [out, in], the torch.nn.Linear layout. 'in-out': W is [in, out], the
   * layout of GPT-2's Conv1D checkpoints, used as stored (no transposed copy).
   */
  weightLayout?: 'out-in' | 'in-out';
}

/**
 * y = x W^T + b (or x W for the 'in-out' layout) with x [..., in], b [out]: one GEMM over all rows
 * with the bias added in its epilogue; backward is two GEMMs over all rows and one bias reduction.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, options: LinearOpOptions = {}): Tensor {
  checkDType('linear', 'x', x, 'f32');
  checkDType('linear', 'weight', weight, 'f32');
  if (bias) checkDType('linear', 'bias', bias, 'f32');
  const backend = commonBackend('linear', x, weight, bias);
  const inOut = options.weightLayout === 'in-out';
  const layout = inOut ? '[in, out]' : '[out, in]';
  if (weight.rank !== 2) fail('linear', `weight must be ${layout}, got ${shapeString(weight.shape)}`);
  const [outF, inF] = (inOut ? [weight.shape[1], weight.shape[0]] : weight.shape) as [number, number];
  if (x.rank < 1 || x.shape[x.rank - 1] !== inF) {
    fail('linear', `x ${shapeString(x.shape)} does not end in ${inF} (weight ${shapeString(weight.shape)} is ${layout})`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) {
    fail('linear', `bias ${shapeString(bias.shape)} does not match ${outF} output features`);
  }
  const rows = x.size / inF;
  const bf16 = getMatmulPrecision() === 'bf16';
  const out = empty([...x.shape.slice(0, -1), outF], 'f32', backend);
  if (rows > 0) {
    backend.gemm(
      x.storage, weight.storage, out.storage,
      { batch: 1, m: rows, n: outF, k: inF, transA: false, transB: !inOut, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0, bf16 },
      bias?.storage,
    );
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const xShape = x.shape;
  return record(out, 'linear', inputs, [x, weight], (dy, [sx, sw]) => {
    // dx [rows, in] = dy [rows, out] W [out, in] (W^T when stored [in, out])
    const dx = empty(xShape, 'f32', backend);
    if (rows > 0) {
      backend.gemm(dy.storage, sw!.storage, dx.storage, {
        batch: 1, m: rows, n: inF, k: outF, transA: false, transB: inOut, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0, bf16,
      });
    }
    // dW = dy^T x ([out, in]) or x^T dy ([in, out]): the weight is shared by every row.
    const dw = sharedWeightGrad(backend, sx!, dy, !inOut, bf16);
    if (!bias) return [dx, dw];
    const db = empty([outF], 'f32', backend);
    backend.reduce('sum', dy.storage, 1, rows, outF, db.storage);
    return [dx, dw, db];
  });
}
