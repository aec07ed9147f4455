// Expands every ISA-generic kernel header inside namespace loom::LOOM_ISA_NS with LOOM_VL float lanes and
// defines that level's kernel table. Included once by each native/isa_*.cc (no include guard on purpose).

namespace loom {
namespace LOOM_ISA_NS {

#include "vecmath.h"
#include "elementwise.h"
#include "reduce.h"
#include "softmax_xent.h"
#include "norm.h"
#include "attention.h"
#include "adamw.h"
#include "gemm_kernel.h"
#include "gemv.h"

static const Kernels table = {
    LOOM_ISA_NAME,
    unary,
    unary_backward,
    binary,
    dropout,
    reduce_sum,
    reduce_max,
    sum_squares,
    softmax,
    softmax_backward,
    cross_entropy,
    cross_entropy_backward,
    layernorm,
    layernorm_backward,
    rmsnorm,
    rmsnorm_backward,
    attention,
    attention_backward,
    adamw,
    gemm,
    gemv,
};

}  // namespace LOOM_ISA_NS
}  // namespace loom
