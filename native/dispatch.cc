// Run-time ISA selection: the best level the CPU supports, or LOOM_ISA / setIsa() forcing a lower one.
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"
#include "kernels.h"

namespace loom {

const Kernels* kernels_avx512();
const Kernels* kernels_avx2();
const Kernels* kernels_portable();

static bool cpu_supports(Isa isa) {
  if (isa == ISA_PORTABLE) return true;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == ISA_AVX2) return avx2 && kernels_avx2();
  return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && kernels_avx512();
#else
  return false;
#endif
}

Isa best_isa() {
  static const Isa best = cpu_supports(ISA_AVX512) ? ISA_AVX512 : cpu_supports(ISA_AVX2) ? ISA_AVX2 : ISA_PORTABLE;
  return best;
}

static Isa g_isa = ISA_PORTABLE;
static const Kernels* g_kernels = nullptr;

static void select(Isa isa) {
  g_isa = isa;
  g_kernels = isa == ISA_AVX512 ? kernels_avx512() : isa == ISA_AVX2 ? kernels_avx2() : kernels_portable();
}

static bool g_init = false;
static void init() {
  if (g_init) return;
  g_init = true;
  select(best_isa());
  const char* env = std::getenv("LOOM_ISA");
  if (env && *env) {
    try {
      set_isa(env);
    } catch (const Error& e) {
      fail(std::string("LOOM_ISA=") + env + ": " + e.what());
    }
  }
}

Isa current_isa() {
  init();
  return g_isa;
}

const char* isa_name(Isa isa) { return isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "portable"; }

void set_isa(const char* name) {
  init();
  Isa want;
  if (!std::strcmp(name, "avx512"))
    want = ISA_AVX512;
  else if (!std::strcmp(name, "avx2"))
    want = ISA_AVX2;
  else if (!std::strcmp(name, "portable"))
    want = ISA_PORTABLE;
  else
    fail(std::string("setIsa: unknown ISA '") + name + "' (expected avx512, avx2 or portable)");
  if (!cpu_supports(want))
    fail(std::string("setIsa: this CPU does not support ") + name + " (best: " + isa_name(best_isa()) + ")");
  select(want);
}

const Kernels& kernels() {
  init();
  return *g_kernels;
}

}  // namespace loom
