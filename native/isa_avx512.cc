// AVX-512 (F, BW, VL, DQ + AVX2, FMA) build of the ISA-generic kernels: 16 float lanes. GCC on x86
// only: Clang does not apply a target to OpenMP-outlined regions, so Clang builds run the portable level.
#include "isa_prelude.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,f16c,popcnt,prefer-vector-width=512")
#define LOOM_VL 16
#define LOOM_ISA_NS avx512
#define LOOM_ISA_NAME "avx512"
#include "isa_body.h"
#pragma GCC pop_options
namespace loom {
const Kernels* kernels_avx512() { return &avx512::table; }
}
#else
namespace loom {
const Kernels* kernels_avx512() { return nullptr; }
}
#endif
