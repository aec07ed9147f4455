// GEMM front end: C = alpha op(A) op(B) + beta C (+ bias) per batch item, through the system BLAS
// (cblas_sgemm) or the addon's own kernel (native/gemm_kernel.h); LOOM_GEMM=auto|blas|own, setGemm() at run time.
// auto (the default with a BLAS) picks per call, see prefer_own().
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"
#include "kernels.h"
#include "threads.h"

#if LOOM_HAVE_BLAS
#if defined(LOOM_BLAS_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif
#if defined(LOOM_BLAS_OPENBLAS)
extern "C" int openblas_get_parallel(void);
extern "C" char* openblas_get_config(void);
#endif
#endif

namespace loom {

bool has_blas() { return LOOM_HAVE_BLAS != 0; }

enum class GemmChoice { Auto, Blas, Own };
static GemmChoice g_choice = GemmChoice::Own;
static bool g_use_gemv = true;
static bool g_gemm_init = false;

static void gemm_init() {
  if (g_gemm_init) return;
  g_gemm_init = true;
  g_choice = has_blas() ? GemmChoice::Auto : GemmChoice::Own;
  const char* gemv_env = std::getenv("LOOM_GEMV");  // 0: skinny products take the GEMM path too (A/B checks)
  g_use_gemv = !(gemv_env && !std::strcmp(gemv_env, "0"));
  const char* env = std::getenv("LOOM_GEMM");
  if (env && *env) {
    try {
      set_gemm_impl(env);
    } catch (const Error& e) {
      fail(std::string("LOOM_GEMM=") + env + ": " + e.what());
    }
  }
}

const char* gemm_impl() {
  gemm_init();
  return g_choice == GemmChoice::Auto ? "auto" : g_choice == GemmChoice::Blas ? "blas" : "own";
}

void set_gemm_impl(const char* name) {
  gemm_init();
  GemmChoice choice;
  if (!std::strcmp(name, "own"))
    choice = GemmChoice::Own;
  else if (!std::strcmp(name, "blas"))
    choice = GemmChoice::Blas;
  else if (!std::strcmp(name, "auto"))
    choice = GemmChoice::Auto;
  else
    fail(std::string("setGemm: unknown GEMM '") + name + "' (expected auto, blas or own)");
  if (choice != GemmChoice::Own && !has_blas())
    fail(std::string("setGemm: '") + name + "' needs a BLAS, and this build of the addon has none (see scripts/detect-blas.mjs)");
  g_choice = choice;
}

// Measured on Zen 4, 2 threads (bench/RESULTS.md): the AVX-512 kernel leads OpenBLAS where a dimension
// is at most 512 (the d = 256/384 models: 183-212 GFLOP/s against 143-200, OpenBLAS splitting thin
// products unevenly over the threads) and on moderate products (bert-base's 1024 x 768 x 768 in the
// step: ~6% faster; level on its 3072-wide ones), and trails it by ~7% on the large-vocabulary LM heads.
static bool prefer_own(const GemmCall& g) {
  const size_t lo = std::min(g.m, std::min(g.n, g.k)), hi = std::max(g.m, std::max(g.n, g.k));
  return !std::strcmp(kernels().name, "avx512") && (lo <= 512 || hi <= 4096);
}

const char* blas_info() {
#if LOOM_HAVE_BLAS && defined(LOOM_BLAS_OPENBLAS)
  static std::string info;
  int par = openblas_get_parallel();
  info = std::string(openblas_get_config()) + (par == 2 ? " (OpenMP)" : par == 1 ? " (pthreads)" : " (sequential)");
  return info.c_str();
#elif LOOM_HAVE_BLAS && defined(LOOM_BLAS_ACCELERATE)
  return "Accelerate";
#else
  return "none";
#endif
}

// C (m, n) = beta C + bias, for k == 0 or alpha == 0 (A and B are not read, as in BLAS)
static void scale_c(float* c, size_t m, size_t n, float beta, const float* bias) {
  int nt = threads_for(static_cast<double>(m) * n, 1 << 16);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < m; i++) {
    float* row = c + i * n;
    for (size_t j = 0; j < n; j++) {
      float v = beta == 0.f ? 0.f : beta * row[j];
      row[j] = bias ? v + bias[j] : v;
    }
  }
}

#if LOOM_HAVE_BLAS
// One item: bias is folded in by pre-filling C (beta == 0) or added afterwards.
static void blas_one(const GemmCall& g, const float* a, const float* b, float* c) {
  const size_t m = g.m, n = g.n;
  float beta = g.beta;
  if (g.bias && beta == 0.f) {
    for (size_t i = 0; i < m; i++) std::memcpy(c + i * n, g.bias, n * sizeof(float));
    beta = 1.f;
  }
  cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(g.k), g.alpha, a,
              static_cast<int>(g.trans_a ? m : g.k), b, static_cast<int>(g.trans_b ? g.k : n), beta, c,
              static_cast<int>(n));
  if (g.bias && g.beta != 0.f)
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) c[i * n + j] += g.bias[j];
}

static bool blas_nests_in_openmp() {
#if defined(LOOM_BLAS_OPENBLAS)
  static const bool nests = openblas_get_parallel() != 1;  // sequential or OpenMP build: safe inside our regions
  return nests;
#else
  return true;  // Accelerate is thread-safe
#endif
}

static void gemm_blas(const GemmCall& g) {
  if (g.m > 2147483647u || g.n > 2147483647u || g.k > 2147483647u) fail("gemm: dimension exceeds BLAS int range");
  const double flops = 2.0 * g.m * g.n * g.k;
  const bool independent = g.batch > 1 && g.stride_c >= g.m * g.n;
  if (independent && flops < 8e6 && blas_nests_in_openmp()) {
    int nt = threads_for(flops * g.batch, 4e6);
    if (nt > static_cast<int>(g.batch)) nt = static_cast<int>(g.batch);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t i = 0; i < g.batch; i++) blas_one(g, g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.stride_c);
    return;
  }
  for (size_t i = 0; i < g.batch; i++) blas_one(g, g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.stride_c);
}
#endif

void gemm(const GemmCall& g) {
  gemm_init();
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  if (g.k == 0 || g.alpha == 0.f) {
    for (size_t i = 0; i < g.batch; i++) scale_c(g.c + i * g.stride_c, g.m, g.n, g.beta, g.bias);
    return;
  }
  // A few rows against a weight matrix (decoding): bandwidth-bound, B streamed once, never packed (fp32 or bf16).
  if (g_use_gemv && g.batch == 1 && g.m <= 4 && !g.trans_a) return kernels().gemv(g);
  if (g.bf16) return gemm_bf16(g);
#if LOOM_HAVE_BLAS
  if (g_choice == GemmChoice::Blas || (g_choice == GemmChoice::Auto && !prefer_own(g))) return gemm_blas(g);
#endif
  kernels().gemm(g);
}

}  // namespace loom
