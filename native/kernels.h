// The kernel table of the native CPU backend: one per ISA level (AVX-512, AVX2+FMA, portable), filled by
// native/isa_*.cc from the same implementation headers, plus the plain (not ISA-specific) kernels.
// Pointers passed here were size-checked by the addon; kernels only check ids/targets themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace loom {

enum UnaryOp : int {
  U_NEG, U_EXP, U_LOG, U_SQRT, U_TANH, U_SIGMOID, U_RELU, U_SILU, U_GELU, U_GELU_TANH, U_POW, U_SCALE, U_ADD_SCALAR,
  U_COUNT
};
enum BinaryOp : int { B_ADD, B_SUB, B_MUL, B_DIV, B_COUNT };

struct GemmCall {
  const float* a;
  const float* b;
  float* c;
  const float* bias;  // null or n
  size_t batch, m, n, k;
  bool trans_a, trans_b;
  size_t stride_a, stride_b, stride_c;
  float alpha, beta;
  bool bf16 = false;  // A and B rounded to bf16, products summed in fp32 (gemm_bf16.cc)
};

// Where row (b, h, t) of a (B, H, T, D) operand starts: off + b*batch + h*head + t*token (elements; the
// head dim is contiguous). Lets attention read q/k/v as views of a packed QKV or a KV cache with spare
// capacity, and write out/dq/dk/dv in the layout the caller's next GEMM wants, without copies.
struct AttnStrides {
  size_t off, batch, head, token;
  size_t at(size_t b, size_t h, size_t t) const { return off + b * batch + h * head + t * token; }
};

struct AttnCall {
  const float* q;       // (B, Hq, T, D) through lq
  const float* k;       // (B, Hkv, S, D) through lk
  const float* v;       // (B, Hkv, S, D) through lv
  const int32_t* mask;  // (B, S) or null
  AttnStrides lq, lk, lv, lo;  // lo: out and dOut (forward output layout); dq/dk/dv use lq/lk/lv
  size_t batch, heads_q, heads_kv, tq, tk, head_dim;
  float scale;
  bool causal;
  double dropout_p;
  uint32_t seed;
};

struct AdamWTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  size_t n;
  double weight_decay;
};

struct AdamWHyper {
  double lr, beta1, beta2, eps;
  double step;
  double grad_scale;  // gradients are multiplied by it first (the clip coefficient), rounded to float
};

struct Kernels {
  const char* name;
  // elementwise.h
  void (*unary)(int op, const float* x, float* y, size_t n, float param);
  void (*unary_backward)(int op, const float* x, const float* y, const float* dy, float* dx, size_t n, float param);
  void (*binary)(int op, const float* a, const std::vector<size_t>& a_shape, const float* b,
                 const std::vector<size_t>& b_shape, float* out, const std::vector<size_t>& out_shape);
  void (*dropout)(const float* x, float* y, size_t n, double p, uint32_t seed);
  // reduce.h
  void (*reduce_sum)(const float* x, size_t outer, size_t r, size_t inner, float* out);
  void (*reduce_max)(const float* x, size_t outer, size_t r, size_t inner, float* out, int32_t* argmax);
  double (*sum_squares)(const float* const* xs, const size_t* ns, size_t count);
  // softmax_xent.h
  void (*softmax)(const float* x, float* y, size_t rows, size_t cols, bool log);
  void (*softmax_backward)(const float* y, const float* dy, float* dx, size_t rows, size_t cols, bool log);
  void (*cross_entropy)(const float* logits, const int32_t* targets, float* losses, float* lse, size_t rows,
                        size_t cols, int32_t ignore_index, float smoothing);
  void (*cross_entropy_backward)(const float* logits, const int32_t* targets, const float* lse, float* dlogits,
                                 size_t rows, size_t cols, int32_t ignore_index, float smoothing, float grad_scale);
  // norm.h
  void (*layernorm)(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                    size_t rows, size_t cols, float eps);
  void (*layernorm_backward)(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                             float* dx, float* dw, float* db, size_t rows, size_t cols);
  void (*rmsnorm)(const float* x, const float* w, float* out, float* rstd, size_t rows, size_t cols, float eps);
  void (*rmsnorm_backward)(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                           size_t rows, size_t cols);
  // attention.h
  void (*attention)(const AttnCall& a, float* out, float* lse);
  void (*attention_backward)(const AttnCall& a, const float* out, const float* lse, const float* dout, float* dq,
                             float* dk, float* dv);
  // adamw.h
  void (*adamw)(const AdamWTensor* ts, size_t count, const AdamWHyper& h);
  // gemm_kernel.h: the addon's own GEMM (all batch items)
  void (*gemm)(const GemmCall& g);
  // gemv.h: m <= 4 rows, batch 1, A not transposed (decoding): streams B once without packing
  void (*gemv)(const GemmCall& g);
};

// ---- dispatch.cc ----
enum Isa : int { ISA_PORTABLE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
Isa best_isa();
Isa current_isa();
const char* isa_name(Isa isa);
/** Selects a level by name; throws if unknown or the CPU lacks it. */
void set_isa(const char* name);
const Kernels& kernels();

// ---- gemm.cc: BLAS or own ----
bool has_blas();
/** "blas" or "own". */
const char* gemm_impl();
void set_gemm_impl(const char* name);
const char* blas_info();
void gemm(const GemmCall& g);

// ---- gemm_bf16.cc: mixed precision (bf16 operands, fp32 sums) ----
/** True when the bf16 GEMM runs VDPBF16PS (an AVX512_BF16 CPU at the avx512 level), else it is emulated. */
bool bf16_gemm_native();
void gemm_bf16(const GemmCall& g);

// ---- copy.cc ----
void fill_f32(float* out, size_t n, float value);
void fill_u32(uint32_t* out, size_t n, uint32_t value);
void fill_u16(uint16_t* out, size_t n, uint16_t value);
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t h);
/** x rounded to bf16 (nearest even) and widened back: the operand rounding of a bf16 GEMM. */
inline float round_to_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }
int32_t f32_to_i32(double x);
void cast_f32_bf16(const float* x, uint16_t* y, size_t n);
void cast_bf16_f32(const uint16_t* x, float* y, size_t n);
void cast_f32_i32(const float* x, int32_t* y, size_t n);
void cast_i32_f32(const int32_t* x, float* y, size_t n);
/** Element size 2 or 4; strides/offsets in elements, already bounds-checked. */
void strided_copy(const void* src, int64_t src_offset, const std::vector<int64_t>& src_strides,
                  const std::vector<int64_t>& shape, void* dst, int64_t dst_offset,
                  const std::vector<int64_t>& dst_strides, size_t elem_size);

// ---- embedding.cc ----
void max_backward(const float* dy, const int32_t* argmax, float* dx, size_t outer, size_t r, size_t inner);
void embedding(const int32_t* ids, const float* table, float* out, size_t n, size_t dim, size_t vocab);
void embedding_backward(const int32_t* ids, const float* dy, float* dtable, size_t n, size_t dim, size_t vocab);

// ---- rope.cc ----
void rope(const float* x, float* out, const float* inv_freq, const int32_t* positions, size_t batch, size_t heads,
          size_t t, size_t head_dim, size_t rotary_dim, bool inverse, bool token_major);

}  // namespace loom
