// AVX2 + FMA build of the ISA-generic kernels: 8 float lanes. GCC on x86 only: Clang does
// not apply a target to OpenMP-outlined regions, so Clang builds run the portable level.
#include "isa_prelude.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,f16c,popcnt")
#define LOOM_VL 8
#define LOOM_ISA_NS avx2
#define LOOM_ISA_NAME "avx2"
#include "isa_body.h"
#pragma GCC pop_options
namespace loom {
const Kernels* kernels_avx2() { return &avx2::table; }
}
#else
namespace loom {
const Kernels* kernels_avx2() { return nullptr; }
}
#endif
