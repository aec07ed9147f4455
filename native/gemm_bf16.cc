// Mixed-precision GEMM: C (fp32) = alpha op(A) op(B) + beta C (+ bias) with A and B rounded to bf16 (round to
// nearest even) and the products summed in fp32: what a bf16 autocast matmul computes. CPUs with AVX512_BF16
// (Zen 4, Cooper Lake, Sapphire Rapids) run VDPBF16PS, which does two bf16 products per fp32 lane, twice the
// work of an fp32 FMA per instruction. Other CPUs (or a lower LOOM_ISA) round copies of A and B and run the
// fp32 GEMM: the same result up to the order of the sums.
//
// Layout (BLIS style, as gemm_kernel.h): B packed in KC x NR panels and A in MR-row panels, both as k-pairs:
// a 32-bit lane holds (x[2p], x[2p+1]) in bf16, the operand layout VDPBF16PS multiplies lane by lane.
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "kernels.h"
#include "threads.h"

namespace loom {

// A and B rounded to bf16 in fp32 copies, then the fp32 GEMM (BLAS or own).
static void gemm_bf16_emulated(const GemmCall& g) {
  size_t last = g.batch - 1;
  std::vector<float> a(last * g.stride_a + g.m * g.k), b(last * g.stride_b + g.k * g.n);
  for (size_t i = 0; i < a.size(); i++) a[i] = round_to_bf16(g.a[i]);
  for (size_t i = 0; i < b.size(); i++) b[i] = round_to_bf16(g.b[i]);
  GemmCall f = g;
  f.a = a.data();
  f.b = b.data();
  f.bf16 = false;
  gemm(f);
}

}  // namespace loom

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")

namespace loom {
namespace bf16k {

constexpr int MR = 6, NV = 4, NR = NV * 16;  // 6 x 64 tile: 24 zmm accumulators, as the fp32 kernel
constexpr size_t KC = 512, MC = 120, NC = 2048;  // KC counts k values (256 pairs): B panel 64 KiB, as fp32's

#include "gemm_blocked.h"

// Interleaves two rows of 16 floats into 16 bf16 pairs (lo[j], hi[j]), rounding to nearest even.
static inline __m512i pairs16(__m512 lo, __m512 hi) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
}

// 32 consecutive floats (fewer: zero-filled) as 16 bf16 pairs in order: pair q = (x[2q], x[2q+1]).
static inline __m512i pairs_run(const float* x, size_t n) {
  __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1u);
  __mmask16 m1 = n >= 32 ? 0xffff : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1u);
  __m512 a = _mm512_maskz_loadu_ps(m0, x), b = _mm512_maskz_loadu_ps(m1, x + 16);
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));
}

// Writes `rows` runs of 16 pairs (tmp[r]) into a panel whose pair q of row r sits at out[q * ld + r].
static inline void scatter_pairs(const uint32_t (*tmp)[16], size_t rows, size_t npairs, uint32_t* out, size_t ld) {
  for (size_t q = 0; q < npairs; q++)
    for (size_t r = 0; r < rows; r++) out[q * ld + r] = tmp[r][q];
}

// Ap: rows [i0, i0+mc) x k [p0, p0+kc) of op(A) as MR-row panels of (kc2, MR) pairs, zero-padded
static void pack_a(const float* a, bool trans, size_t m, size_t k, size_t i0, size_t mc, size_t p0, size_t kc,
                   uint16_t* ap) {
  const size_t kc2 = (kc + 1) / 2;
  for (size_t ir = 0; ir < mc; ir += MR) {
    uint32_t* dst = reinterpret_cast<uint32_t*>(ap) + ir * kc2;
    size_t rows = mc - ir < size_t(MR) ? mc - ir : MR;
    if (trans) {  // A stored (k, m): the panel's rows are contiguous within each k
      __mmask16 rm = static_cast<__mmask16>((1u << rows) - 1u);
      for (size_t p2 = 0; p2 < kc2; p2++) {
        size_t p = p0 + 2 * p2;
        __m512 lo = _mm512_maskz_loadu_ps(rm, a + p * m + i0 + ir);
        __m512 hi = 2 * p2 + 1 < kc ? _mm512_maskz_loadu_ps(rm, a + (p + 1) * m + i0 + ir) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(dst + p2 * MR, static_cast<__mmask16>((1u << MR) - 1u), pairs16(lo, hi));
      }
    } else {  // A stored (m, k): each row is a run along k
      alignas(64) uint32_t tmp[MR][16] = {};
      for (size_t q0 = 0; q0 < kc2; q0 += 16) {
        size_t np = kc2 - q0 < 16 ? kc2 - q0 : 16;
        for (size_t r = 0; r < size_t(MR); r++) {
          if (r < rows) {
            size_t left = kc - 2 * q0;
            _mm512_store_si512(tmp[r], pairs_run(a + (i0 + ir + r) * k + p0 + 2 * q0, left < 32 ? left : 32));
          } else
            _mm512_store_si512(tmp[r], _mm512_setzero_si512());
        }
        scatter_pairs(tmp, MR, np, dst + q0 * MR, MR);
      }
    }
  }
}

// Bp panel: k [p0, p0+kc) x cols [j0, j0+NR) of op(B) as (kc2, NR) pairs, zero-padded
static void pack_b_panel(const float* b, bool trans, size_t n, size_t k, size_t p0, size_t kc, size_t j0,
                         uint16_t* bp) {
  const size_t kc2 = (kc + 1) / 2;
  const size_t cols = n - j0 < size_t(NR) ? n - j0 : NR;
  uint32_t* dst = reinterpret_cast<uint32_t*>(bp);
  if (!trans) {  // B stored (k, n): two rows of B give one row of pairs
    __mmask16 cm[NV];
    for (int v = 0; v < NV; v++) {
      size_t c0 = v * 16, c = cols > c0 ? cols - c0 : 0;
      cm[v] = c >= 16 ? 0xffff : static_cast<__mmask16>((1u << c) - 1u);
    }
    for (size_t p2 = 0; p2 < kc2; p2++) {
      size_t p = p0 + 2 * p2;
      bool second = 2 * p2 + 1 < kc;
      for (int v = 0; v < NV; v++) {
        __m512 lo = _mm512_maskz_loadu_ps(cm[v], b + p * n + j0 + v * 16);
        __m512 hi = second ? _mm512_maskz_loadu_ps(cm[v], b + (p + 1) * n + j0 + v * 16) : _mm512_setzero_ps();
        _mm512_storeu_si512(dst + p2 * NR + v * 16, pairs16(lo, hi));
      }
    }
    return;
  }
  // B stored (n, k): each column of op(B) is a run along k
  alignas(64) uint32_t tmp[NR][16];
  for (size_t q0 = 0; q0 < kc2; q0 += 16) {
    size_t np = kc2 - q0 < 16 ? kc2 - q0 : 16;
    for (size_t j = 0; j < size_t(NR); j++) {
      if (j < cols) {
        size_t left = kc - 2 * q0;
        _mm512_store_si512(tmp[j], pairs_run(b + (j0 + j) * k + p0 + 2 * q0, left < 32 ? left : 32));
      } else
        _mm512_store_si512(tmp[j], _mm512_setzero_si512());
    }
    scatter_pairs(tmp, NR, np, dst + q0 * NR, NR);
  }
}

// acc (MR, NR) = sum over pairs of Ap . Bp; then C tile (mr, nr) = alpha acc + [first: beta C + bias | else: C]
static inline void micro(size_t kc2, const uint16_t* LOOM_RESTRICT ap, const uint16_t* LOOM_RESTRICT bp,
                         float* LOOM_RESTRICT c, size_t ldc, size_t mr, size_t nr, float alpha, float beta,
                         bool first, const float* bias) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
  const uint32_t* a32 = reinterpret_cast<const uint32_t*>(ap);
  for (size_t p2 = 0; p2 < kc2; p2++) {
    __m512bh b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(bp + (p2 * NR + v * 16) * 2));
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a32[p2 * MR + r])));
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, b[v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  if (mr == size_t(MR) && nr == size_t(NR)) {
    for (int r = 0; r < MR; r++)
      for (int v = 0; v < NV; v++) {
        float* cp = c + r * ldc + v * 16;
        __m512 res = _mm512_mul_ps(acc[r][v], va);
        if (!first)
          res = _mm512_add_ps(res, _mm512_loadu_ps(cp));
        else {
          if (beta != 0.f) res = _mm512_add_ps(res, _mm512_mul_ps(vb, _mm512_loadu_ps(cp)));
          if (bias) res = _mm512_add_ps(res, _mm512_loadu_ps(bias + v * 16));
        }
        _mm512_storeu_ps(cp, res);
      }
    return;
  }
  alignas(64) float buf[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) _mm512_store_ps(&buf[r][v * 16], acc[r][v]);
  store_edge_tile(&buf[0][0], NR, c, ldc, mr, nr, alpha, beta, first, bias);
}

// The bf16 panel format of the shared loop nest: rows of k-pairs.
struct Bf16Panels {
  using Elem = uint16_t;
  static constexpr size_t MR = bf16k::MR, NR = bf16k::NR, KC = bf16k::KC, MC = bf16k::MC, NC = bf16k::NC;
  static constexpr int SLOT_A = 3, SLOT_B = 2;
  static size_t span(size_t kc) { return round_up(kc, 2); }
  static void pack_a(const float* a, bool trans, size_t m, size_t k, size_t i0, size_t mc, size_t p0, size_t kc, uint16_t* ap) {
    bf16k::pack_a(a, trans, m, k, i0, mc, p0, kc, ap);
  }
  static void pack_b_panel(const float* b, bool trans, size_t n, size_t k, size_t p0, size_t kc, size_t j0, uint16_t* bp) {
    bf16k::pack_b_panel(b, trans, n, k, p0, kc, j0, bp);
  }
  static void micro(size_t span, const uint16_t* ap, const uint16_t* bp, float* c, size_t ldc, size_t mr, size_t nr,
                    float alpha, float beta, bool first, const float* bias) {
    bf16k::micro(span / 2, ap, bp, c, ldc, mr, nr, alpha, beta, first, bias);
  }
};

}  // namespace bf16k
}  // namespace loom

#pragma GCC pop_options

namespace loom {
bool bf16_gemm_native() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  }();
  return ok && current_isa() == ISA_AVX512;
}
void gemm_bf16(const GemmCall& g) {
  if (bf16_gemm_native())
    bf16k::blocked_gemm<bf16k::Bf16Panels>(g);
  else
    gemm_bf16_emulated(g);
}
}  // namespace loom

#else

namespace loom {
bool bf16_gemm_native() { return false; }
void gemm_bf16(const GemmCall& g) { gemm_bf16_emulated(g); }
}  // namespace loom

#endif
