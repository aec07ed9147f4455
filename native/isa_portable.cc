// Portable build of the ISA-generic kernels: 4 float lanes (SSE2 on x86-64, NEON on arm64), no target pragma.
#include "isa_prelude.h"

#define LOOM_VL 4
#define LOOM_ISA_NS portable
#define LOOM_ISA_NAME "portable"
#include "isa_body.h"

namespace loom {
const Kernels* kernels_portable() { return &portable::table; }
}
