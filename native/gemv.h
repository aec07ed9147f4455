// Skinny GEMM (ISA-generic, included by native/isa_*.cc): C (m, n) = alpha A (m, k) op(B) + beta C (+ bias) for
// m <= GEMV_MAX_ROWS, the shape of token-by-token decoding. Such a product reads every weight once and does
// m multiply-adds with it, so it is bound by memory bandwidth: it streams B exactly once, in its stored
// layout, and never packs it (a packed GEMM would read B, write a packed copy and read that again).
// Threads split the output columns, so each one streams a disjoint part of B.

constexpr size_t GEMV_MAX_ROWS = 4;

// x rounded to bf16 (nearest even) and widened back: the operand rounding of a bf16 GEMM (GemmCall::bf16).
LOOM_INLINE vf vround_bf16(vf x) {
  vu u = (vu)x;
  vu r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  vi nan = (vi)((u & 0x7fffffffu) > 0x7f800000u);
  return vsel(nan, (vf)((u | 0x00400000u) & 0xffff0000u), (vf)r);
}

// C tile epilogue for one row: c = alpha acc + beta c + bias (beta == 0 ignores C, NaN included)
LOOM_INLINE float gemv_out(float acc, float alpha, float beta, const float* c, const float* bias, size_t j) {
  float v = alpha * acc;
  if (beta != 0.f) v += beta * c[j];
  if (bias) v += bias[j];
  return v;
}

// B stored (n, k): each output is a dot product of a row of A with a contiguous row of B.
// M is a template argument so that the accumulators stay in registers.
template <size_t M, bool R>
static void gemv_rows(const GemmCall& g, size_t j0, size_t j1) {
  constexpr size_t m = M;
  const size_t k = g.k, n = g.n;
  const size_t kv = k / VL * VL;
  for (size_t j = j0; j < j1; j++) {
    const float* brow = g.b + j * k;
    vf acc[M][2] = {};
    size_t p = 0;
    for (; p + 2 * VL <= kv; p += 2 * VL) {
      vf b0 = vload(brow + p), b1 = vload(brow + p + VL);
      if (R) {
        b0 = vround_bf16(b0);
        b1 = vround_bf16(b1);
      }
      for (size_t r = 0; r < m; r++) {
        acc[r][0] = vfma(vload(g.a + r * k + p), b0, acc[r][0]);
        acc[r][1] = vfma(vload(g.a + r * k + p + VL), b1, acc[r][1]);
      }
    }
    for (; p < kv; p += VL) {
      vf b0 = R ? vround_bf16(vload(brow + p)) : vload(brow + p);
      for (size_t r = 0; r < m; r++) acc[r][0] = vfma(vload(g.a + r * k + p), b0, acc[r][0]);
    }
    for (size_t r = 0; r < m; r++) {
      float s = hsum(acc[r][0] + acc[r][1]);
      for (size_t q = kv; q < k; q++) s += g.a[r * k + q] * (R ? round_to_bf16(brow[q]) : brow[q]);
      g.c[r * n + j] = gemv_out(s, g.alpha, g.beta, g.c + r * n, g.bias, j);
    }
  }
}

// B stored (k, n): rows of B are scaled by A's entries and summed into a register block of outputs.
template <size_t M, bool R>
static void gemv_cols(const GemmCall& g, size_t j0, size_t j1) {
  constexpr size_t NB = M <= 2 ? 8 : 4;  // vectors of outputs per block: M * NB accumulators in registers
  constexpr size_t m = M;
  const size_t k = g.k, n = g.n;
  for (size_t jb = j0; jb < j1; jb += NB * VL) {
    size_t width = j1 - jb < NB * VL ? j1 - jb : NB * VL;
    size_t full = width / VL;
    vf acc[M][NB] = {};
    for (size_t p = 0; p < k; p++) {
      const float* brow = g.b + p * n + jb;
      vf x[M];
      for (size_t r = 0; r < m; r++) x[r] = vset(g.a[r * k + p]);
      if (full == NB) {
#pragma GCC unroll 8
        for (size_t v = 0; v < NB; v++) {
          vf b = vload(brow + v * VL);
          if (R) b = vround_bf16(b);
          for (size_t r = 0; r < m; r++) acc[r][v] = vfma(x[r], b, acc[r][v]);
        }
      } else {
        for (size_t v = 0; v * VL < width; v++) {
          size_t cnt = width - v * VL < size_t(VL) ? width - v * VL : VL;
          vf b = cnt == size_t(VL) ? vload(brow + v * VL) : vload_part(brow + v * VL, cnt);
          if (R) b = vround_bf16(b);
          for (size_t r = 0; r < m; r++) acc[r][v] = vfma(x[r], b, acc[r][v]);
        }
      }
    }
    for (size_t r = 0; r < m; r++) {
      float* crow = g.c + r * n;
      for (size_t v = 0; v * VL < width; v++)
        for (size_t l = 0; l < size_t(VL) && v * VL + l < width; l++) {
          size_t j = jb + v * VL + l;
          crow[j] = gemv_out(acc[r][v][l], g.alpha, g.beta, crow, g.bias, j);
        }
    }
  }
}

template <bool R>
static void gemv_part(const GemmCall& g, size_t j0, size_t j1) {
  switch (g.m) {
    case 1: g.trans_b ? gemv_rows<1, R>(g, j0, j1) : gemv_cols<1, R>(g, j0, j1); break;
    case 2: g.trans_b ? gemv_rows<2, R>(g, j0, j1) : gemv_cols<2, R>(g, j0, j1); break;
    case 3: g.trans_b ? gemv_rows<3, R>(g, j0, j1) : gemv_cols<3, R>(g, j0, j1); break;
    default: g.trans_b ? gemv_rows<4, R>(g, j0, j1) : gemv_cols<4, R>(g, j0, j1); break;
  }
}

// One matrix (batch == 1, A not transposed, m <= GEMV_MAX_ROWS); k > 0 and alpha != 0 (gemm.cc handles those).
// With g.bf16 the few rows of A are rounded once up front and B's values as they stream by.
static void gemv(const GemmCall& call) {
  GemmCall g = call;
  if (g.bf16) {
    float* a = scratch(7, g.m * g.k);
    for (size_t i = 0; i < g.m * g.k; i++) a[i] = round_to_bf16(call.a[i]);
    g.a = a;
  }
  const double bytes = 4.0 * g.n * g.k;
  int nt = threads_for(bytes, 1 << 18);  // a thread per 256 KiB of B at least
  // Column blocks of whole vectors keep each thread's share of B aligned to lanes.
  const size_t unit = g.trans_b ? 1 : VL;
  static_assert(GEMV_MAX_ROWS == 4, "gemv dispatches m = 1..4");
  const size_t units = (g.n + unit - 1) / unit;
#pragma omp parallel num_threads(nt)
  {
    size_t u0, u1;
    thread_range(units, &u0, &u1);
    size_t j0 = u0 * unit, j1 = u1 * unit < g.n ? u1 * unit : g.n;
    if (j0 < j1) {
      if (g.bf16)
        gemv_part<true>(g, j0, j1);
      else
        gemv_part<false>(g, j0, j1);
    }
  }
}
