// The addon's own SGEMM (ISA-generic, included by native/isa_*.cc), BLIS style: B packed in KC x NR panels,
// A in MC x KC blocks of MR-row panels, an MR x NR register-blocked micro-kernel, OpenMP over (M block, N range).
// C = alpha op(A) op(B) + beta C (+ bias), per batch item; k == 0 and alpha == 0 are handled by gemm.cc.

// Register tiles measured on Zen 4 (2 cores): wide-N tiles win; 1-thread GFLOP/s on 1024x768x1024 in brackets.
#if LOOM_VL == 16
constexpr int GEMM_MR = 6, GEMM_NV = 4;  // 6 x 64: 24 zmm accumulators [94; 12x32: 80, 8x32: 70]
constexpr size_t GEMM_KC = 256, GEMM_MC = 120, GEMM_NC = 2048;
#elif LOOM_VL == 8
constexpr int GEMM_MR = 3, GEMM_NV = 4;  // 3 x 32: 12 ymm accumulators [85; 6x16: 55, 4x24: 71]
constexpr size_t GEMM_KC = 384, GEMM_MC = 120, GEMM_NC = 2048;
#else
constexpr int GEMM_MR = 3, GEMM_NV = 4;  // 3 x 16: 12 xmm accumulators [31; 4x8: 27]
constexpr size_t GEMM_KC = 256, GEMM_MC = 96, GEMM_NC = 1024;
#endif
constexpr int GEMM_NR = GEMM_NV * VL;

// acc (MR, NR) = Ap (kc, MR)^T Bp (kc, NR); then C tile (mr, nr) = alpha acc + [first: beta C + bias | else: C]
static inline void gemm_micro(size_t kc, const float* LOOM_RESTRICT ap, const float* LOOM_RESTRICT bp,
                              float* LOOM_RESTRICT c, size_t ldc, size_t mr, size_t nr, float alpha, float beta,
                              bool first, const float* bias) {
  vf acc[GEMM_MR][GEMM_NV];
#pragma GCC unroll 16
  for (int r = 0; r < GEMM_MR; r++)
#pragma GCC unroll 8
    for (int v = 0; v < GEMM_NV; v++) acc[r][v] = vset(0.f);
  for (size_t p = 0; p < kc; p++) {
    vf b[GEMM_NV];
#pragma GCC unroll 8
    for (int v = 0; v < GEMM_NV; v++) b[v] = vload(bp + p * GEMM_NR + v * VL);
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++) {
      vf a = vset(ap[p * GEMM_MR + r]);
#pragma GCC unroll 8
      for (int v = 0; v < GEMM_NV; v++) acc[r][v] = vfma(a, b[v], acc[r][v]);
    }
  }
  if (mr == GEMM_MR && nr == GEMM_NR) {
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++)
#pragma GCC unroll 8
      for (int v = 0; v < GEMM_NV; v++) {
        float* cp = c + r * ldc + v * VL;
        vf res = acc[r][v] * alpha;
        if (!first)
          res += vload(cp);
        else {
          if (beta != 0.f) res += beta * vload(cp);
          if (bias) res += vload(bias + v * VL);
        }
        vstore(cp, res);
      }
    return;
  }
  float buf[GEMM_MR][GEMM_NR];
  for (int r = 0; r < GEMM_MR; r++)
    for (int v = 0; v < GEMM_NV; v++) vstore(&buf[r][v * VL], acc[r][v]);
  for (size_t r = 0; r < mr; r++)
    for (size_t j = 0; j < nr; j++) {
      float res = buf[r][j] * alpha;
      float* cp = c + r * ldc + j;
      if (!first)
        res += *cp;
      else {
        if (beta != 0.f) res += beta * *cp;
        if (bias) res += bias[j];
      }
      *cp = res;
    }
}

// Ap: rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) as MR-row panels (kc, MR), zero-padded rows
static void gemm_pack_a(const float* a, bool trans, size_t m, size_t k, size_t i0, size_t mc, size_t p0, size_t kc,
                        float* LOOM_RESTRICT ap) {
  for (size_t ir = 0; ir < mc; ir += GEMM_MR) {
    float* dst = ap + ir * kc;
    size_t rows = mc - ir < size_t(GEMM_MR) ? mc - ir : GEMM_MR;
    if (trans) {  // A stored (k, m): row p of A^T panel is contiguous
      for (size_t p = 0; p < kc; p++) {
        const float* src = a + (p0 + p) * m + i0 + ir;
        for (size_t r = 0; r < rows; r++) dst[p * GEMM_MR + r] = src[r];
        for (size_t r = rows; r < size_t(GEMM_MR); r++) dst[p * GEMM_MR + r] = 0.f;
      }
    } else {  // A stored (m, k)
      for (size_t r = 0; r < rows; r++) {
        const float* src = a + (i0 + ir + r) * k + p0;
        for (size_t p = 0; p < kc; p++) dst[p * GEMM_MR + r] = src[p];
      }
      for (size_t r = rows; r < size_t(GEMM_MR); r++)
        for (size_t p = 0; p < kc; p++) dst[p * GEMM_MR + r] = 0.f;
    }
  }
}

// Bp panel jr: rows [p0, p0+kc) x cols [j0, j0+NR) of op(B) as (kc, NR), zero-padded cols
static void gemm_pack_b_panel(const float* b, bool trans, size_t n, size_t k, size_t p0, size_t kc, size_t j0,
                              float* LOOM_RESTRICT bp) {
  size_t cols = n - j0 < size_t(GEMM_NR) ? n - j0 : GEMM_NR;
  if (!trans) {  // B stored (k, n)
    for (size_t p = 0; p < kc; p++) {
      const float* src = b + (p0 + p) * n + j0;
      float* dst = bp + p * GEMM_NR;
      if (cols == size_t(GEMM_NR))
        for (int v = 0; v < GEMM_NV; v++) vstore(dst + v * VL, vload(src + v * VL));
      else {
        for (size_t j = 0; j < cols; j++) dst[j] = src[j];
        for (size_t j = cols; j < size_t(GEMM_NR); j++) dst[j] = 0.f;
      }
    }
  } else {  // B stored (n, k)
    for (size_t j = 0; j < cols; j++) {
      const float* src = b + (j0 + j) * k + p0;
      for (size_t p = 0; p < kc; p++) bp[p * GEMM_NR + j] = src[p];
    }
    for (size_t j = cols; j < size_t(GEMM_NR); j++)
      for (size_t p = 0; p < kc; p++) bp[p * GEMM_NR + j] = 0.f;
  }
}

// One matrix: C (m, n) from op(A) (m, k), op(B) (k, n), on `nt` threads.
static void gemm_one(const GemmCall& g, const float* a, const float* b, float* c, int nt) {
  const size_t M = g.m, N = g.n, K = g.k;
  size_t mc = GEMM_MC;
  if ((M + mc - 1) / mc < static_cast<size_t>(nt)) {
    size_t per = (M + nt - 1) / nt;
    mc = round_up(per, GEMM_MR);
    if (mc > GEMM_MC) mc = GEMM_MC;
  }
  const size_t n_ic = (M + mc - 1) / mc;
  const size_t nc_max = N < GEMM_NC ? N : GEMM_NC;
  float* bp = scratch(0, GEMM_KC * round_up(nc_max, GEMM_NR));
#pragma omp parallel num_threads(nt)
  {
    float* ap = scratch(1, GEMM_KC * round_up(mc, GEMM_MR));
    for (size_t jc = 0; jc < N; jc += GEMM_NC) {
      size_t nc = N - jc < GEMM_NC ? N - jc : GEMM_NC;
      size_t n_jr = (nc + GEMM_NR - 1) / GEMM_NR;
      // split the N range too when there are too few M blocks to feed every thread
      size_t n_jchunk = n_ic >= 2 * static_cast<size_t>(nt) ? 1 : (2 * nt + n_ic - 1) / n_ic;
      if (n_jchunk > n_jr) n_jchunk = n_jr;
      size_t tasks = n_ic * n_jchunk;
      for (size_t pc = 0; pc < K; pc += GEMM_KC) {
        size_t kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
        bool first = pc == 0;
#pragma omp for schedule(static)
        for (size_t jr = 0; jr < n_jr; jr++)
          gemm_pack_b_panel(b, g.trans_b, N, K, pc, kc, jc + jr * GEMM_NR, bp + jr * GEMM_NR * kc);
        size_t packed_ic = ~size_t(0);
#pragma omp for schedule(dynamic, 1)
        for (size_t t = 0; t < tasks; t++) {
          size_t ic_idx = t / n_jchunk, jch = t % n_jchunk;
          size_t i0 = ic_idx * mc, mcur = M - i0 < mc ? M - i0 : mc;
          if (packed_ic != ic_idx) {
            gemm_pack_a(a, g.trans_a, M, K, i0, mcur, pc, kc, ap);
            packed_ic = ic_idx;
          }
          size_t jr0 = jch * n_jr / n_jchunk, jr1 = (jch + 1) * n_jr / n_jchunk;
          for (size_t jr = jr0; jr < jr1; jr++) {
            size_t j0 = jc + jr * GEMM_NR, nr = N - j0 < size_t(GEMM_NR) ? N - j0 : GEMM_NR;
            const float* bpanel = bp + jr * GEMM_NR * kc;
            const float* bias = g.bias ? g.bias + j0 : nullptr;
            for (size_t ir = 0; ir < mcur; ir += GEMM_MR) {
              size_t mr = mcur - ir < size_t(GEMM_MR) ? mcur - ir : GEMM_MR;
              gemm_micro(kc, ap + ir * kc, bpanel, c + (i0 + ir) * N + j0, N, mr, nr, g.alpha, g.beta, first, bias);
            }
          }
        }
      }
    }
  }
}

// All batch items: in parallel over items when each is small, else one after another on all threads.
static void gemm(const GemmCall& g) {
  const double flops = 2.0 * g.m * g.n * g.k;
  const bool independent = g.batch > 1 && g.stride_c >= g.m * g.n;
  if (independent && flops < 8e6) {
    int nt = threads_for(flops * g.batch, 4e6);
    if (nt > static_cast<int>(g.batch)) nt = static_cast<int>(g.batch);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t i = 0; i < g.batch; i++)
      gemm_one(g, g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.stride_c, 1);
    return;
  }
  int nt = threads_for(flops, 2e6);
  for (size_t i = 0; i < g.batch; i++)
    gemm_one(g, g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.stride_c, nt);
}
