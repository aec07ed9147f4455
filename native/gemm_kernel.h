// The addon's own SGEMM (ISA-generic, included by native/isa_*.cc): fp32 panels, packing and the MR x NR
// register-blocked micro-kernel for the BLIS loop nest of gemm_blocked.h.
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

#include "gemm_blocked.h"

// acc (MR, NR) = Ap (kc, MR)^T Bp (kc, NR); then C tile (mr, nr) = alpha acc + [first: beta C + bias | else: C]
static inline void gemm_micro(size_t kc, const float* LOOM_RESTRICT ap, const float* LOOM_RESTRICT bp,
                              float* LOOM_RESTRICT c, size_t ldc, size_t mr, size_t nr, float alpha, float beta,
                              bool first, const float* bias) {
  constexpr int LINE = 16;  // floats per 64-byte cache line
  vf acc[GEMM_MR][GEMM_NV];
  // C is read once, at the end: fetch its tile now so that the update does not wait on L3 or memory
  for (size_t r = 0; r < mr; r++)
    for (size_t j = 0; j < nr; j += LINE) __builtin_prefetch(c + r * ldc + j, 1, 3);
#pragma GCC unroll 16
  for (int r = 0; r < GEMM_MR; r++)
#pragma GCC unroll 8
    for (int v = 0; v < GEMM_NV; v++) acc[r][v] = vset(0.f);
  for (size_t p = 0; p < kc; p++) {
    // the B panel streams from L2 (KC x NR floats is more than L1): ask for its rows 16 steps ahead
#pragma GCC unroll 8
    for (int v = 0; v < GEMM_NR; v += LINE) __builtin_prefetch(bp + (p + 16) * GEMM_NR + v, 0, 3);
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
  store_edge_tile(&buf[0][0], GEMM_NR, c, ldc, mr, nr, alpha, beta, first, bias);
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
    } else {  // A stored (m, k): MR rows x VL columns transposed in registers, the ragged rest one at a time
      static_assert(VL >= GEMM_MR, "a transposed block row must hold a panel row");
      size_t kc_v = rows == size_t(GEMM_MR) ? kc / VL * VL : 0;
      vf blk[VL];
      for (size_t p = 0; p < kc_v; p += VL) {
        for (int r = 0; r < VL; r++) blk[r] = r < GEMM_MR ? vload(a + (i0 + ir + r) * k + p0 + p) : vset(0.f);
        vtranspose(blk);
        // panel rows p.. are MR floats apart: a full-width store spills past its MR floats into rows the
        // next stores overwrite, which is fine while it stays inside this block of VL rows
        for (int q = 0; q < VL; q++)
          if (q * GEMM_MR + VL <= VL * GEMM_MR)
            vstore(dst + (p + q) * GEMM_MR, blk[q]);
          else
            vstore_part(dst + (p + q) * GEMM_MR, blk[q], GEMM_MR);
      }
      for (size_t r = 0; r < rows; r++) {
        const float* src = a + (i0 + ir + r) * k + p0;
        for (size_t p = kc_v; p < kc; p++) dst[p * GEMM_MR + r] = src[p];
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
  } else {  // B stored (n, k): VL x VL blocks transposed in registers, the ragged rest one float at a time
    const size_t cols_v = cols / VL * VL, kc_v = kc / VL * VL;
    vf rows[VL];
    for (size_t j = 0; j < cols_v; j += VL)
      for (size_t p = 0; p < kc_v; p += VL) {
        for (int i = 0; i < VL; i++) rows[i] = vload(b + (j0 + j + i) * k + p0 + p);
        vtranspose(rows);
        for (int i = 0; i < VL; i++) vstore(bp + (p + i) * GEMM_NR + j, rows[i]);
      }
    for (size_t j = 0; j < cols; j++) {
      const float* src = b + (j0 + j) * k + p0;
      for (size_t p = j < cols_v ? kc_v : 0; p < kc; p++) bp[p * GEMM_NR + j] = src[p];
    }
    for (size_t j = cols; j < size_t(GEMM_NR); j++)
      for (size_t p = 0; p < kc; p++) bp[p * GEMM_NR + j] = 0.f;
  }
}

// The fp32 panel format of the shared loop nest.
struct F32Panels {
  using Elem = float;
  static constexpr size_t MR = GEMM_MR, NR = GEMM_NR, KC = GEMM_KC, MC = GEMM_MC, NC = GEMM_NC;
  static constexpr int SLOT_A = 1, SLOT_B = 0;
  static size_t span(size_t kc) { return kc; }
  static void pack_a(const float* a, bool trans, size_t m, size_t k, size_t i0, size_t mc, size_t p0, size_t kc, float* ap) {
    gemm_pack_a(a, trans, m, k, i0, mc, p0, kc, ap);
  }
  static void pack_b_panel(const float* b, bool trans, size_t n, size_t k, size_t p0, size_t kc, size_t j0, float* bp) {
    gemm_pack_b_panel(b, trans, n, k, p0, kc, j0, bp);
  }
  static void micro(size_t kc, const float* ap, const float* bp, float* c, size_t ldc, size_t mr, size_t nr, float alpha,
                    float beta, bool first, const float* bias) {
    gemm_micro(kc, ap, bp, c, ldc, mr, nr, alpha, beta, first, bias);
  }
};

static void gemm(const GemmCall& g) { blocked_gemm<F32Panels>(g); }
