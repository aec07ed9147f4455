// N-API bindings of the native CPU backend (loom_cpu.node): settings, data movement, elementwise, reduce,
// gemm, dropout and the optimiser. Each binding checks argument types and storage sizes, then calls a kernel.
// The nn kernels (norms, softmax, cross-entropy, embedding, rope, attention) are bound in addon_nn.cc.
#include "addon.h"

#include <cstdint>
#include <cstring>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "dropout.h"
#include "kernels.h"
#include "threads.h"

namespace loom {
namespace {

using Info = Napi::CallbackInfo;

// ---- settings ----
Napi::Value SetNumThreads(const Info& info) {
  Args a{info, "setNumThreads"};
  size_t n = a.size(0, "n");
  if (n < 1 || n > 1024) fail("setNumThreads: n must be in [1, 1024]");
  set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
Napi::Value NumThreads(const Info& info) { return Napi::Number::New(info.Env(), num_threads()); }
Napi::Value SetIsa(const Info& info) {
  set_isa(Args{info, "setIsa"}.str(0, "isa").c_str());
  return info.Env().Undefined();
}
Napi::Value GetIsa(const Info& info) { return Napi::String::New(info.Env(), isa_name(current_isa())); }
Napi::Value BestIsa(const Info& info) { return Napi::String::New(info.Env(), isa_name(best_isa())); }
Napi::Value SetGemm(const Info& info) {
  set_gemm_impl(Args{info, "setGemm"}.str(0, "impl").c_str());
  return info.Env().Undefined();
}
Napi::Value GemmImpl(const Info& info) { return Napi::String::New(info.Env(), gemm_impl()); }
Napi::Value Bf16GemmNative(const Info& info) { return Napi::Boolean::New(info.Env(), bf16_gemm_native()); }

// adviseHugePages(buffer): asks for transparent huge pages over the buffer's aligned 2 MiB pages; called
// before the buffer is first written, so its pages fault in huge. Advice only: failures are ignored.
Napi::Value AdviseHugePages(const Info& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "adviseHugePages: expected an ArrayBuffer");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  Napi::ArrayBuffer buf = info[0].As<Napi::ArrayBuffer>();
  const uintptr_t huge = 2u << 20;
  uintptr_t begin = reinterpret_cast<uintptr_t>(buf.Data()), end = begin + buf.ByteLength();
  uintptr_t first = (begin + huge - 1) / huge * huge, last = end / huge * huge;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
  return info.Env().Undefined();
}
Napi::Value HasBlas(const Info& info) { return Napi::Boolean::New(info.Env(), has_blas()); }
Napi::Value BlasInfo(const Info& info) { return Napi::String::New(info.Env(), blas_info()); }
Napi::Value DropoutUniform(const Info& info) {
  Args a{info, "dropoutUniform"};
  return Napi::Number::New(info.Env(), dropout_uniform(to_uint32(a.num(0, "seed")), a.size(1, "index")));
}

// ---- any-dtype storages (fill, cast, stridedCopy) ----
struct AnyView {
  void* data;
  size_t n;
  int dtype;  // 0 f32, 1 i32, 2 bf16 (Uint16Array)
};
AnyView any_array(const Args& a, size_t i, const char* name) {
  Napi::Value v = a.info[i];
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    int dt = t.TypedArrayType() == napi_float32_array ? 0
             : t.TypedArrayType() == napi_int32_array  ? 1
             : t.TypedArrayType() == napi_uint16_array ? 2
                                                       : -1;
    if (dt >= 0) {
      auto* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
      return {base + t.ByteOffset(), t.ElementLength(), dt};
    }
  }
  a.bad(i, name, "must be a Float32Array, Int32Array or Uint16Array (bf16)");
}

Napi::Value Fill(const Info& info) {
  Args a{info, "fill"};
  AnyView out = any_array(a, 0, "out");
  double value = a.num(1, "value");
  if (out.dtype == 0) fill_f32(static_cast<float*>(out.data), out.n, static_cast<float>(value));
  if (out.dtype == 1) fill_u32(static_cast<uint32_t*>(out.data), out.n, static_cast<uint32_t>(f32_to_i32(value)));
  if (out.dtype == 2) fill_u16(static_cast<uint16_t*>(out.data), out.n, f32_to_bf16(static_cast<float>(value)));
  return info.Env().Undefined();
}

Napi::Value Cast(const Info& info) {
  Args a{info, "cast"};
  AnyView x = any_array(a, 0, "x"), y = any_array(a, 1, "out");
  if (y.n < x.n) fail("cast: out has " + std::to_string(y.n) + " elements, x has " + std::to_string(x.n));
  size_t n = x.n;
  if (x.dtype == y.dtype) {
    std::memmove(y.data, x.data, n * (x.dtype == 2 ? 2 : 4));
  } else if (x.dtype == 0) {
    if (y.dtype == 1) cast_f32_i32(static_cast<float*>(x.data), static_cast<int32_t*>(y.data), n);
    if (y.dtype == 2) cast_f32_bf16(static_cast<float*>(x.data), static_cast<uint16_t*>(y.data), n);
  } else if (y.dtype == 0) {
    if (x.dtype == 1) cast_i32_f32(static_cast<int32_t*>(x.data), static_cast<float*>(y.data), n);
    if (x.dtype == 2) cast_bf16_f32(static_cast<uint16_t*>(x.data), static_cast<float*>(y.data), n);
  } else {  // i32 <-> bf16 through f32
    std::vector<float> tmp(n);
    if (x.dtype == 1) {
      cast_i32_f32(static_cast<int32_t*>(x.data), tmp.data(), n);
      cast_f32_bf16(tmp.data(), static_cast<uint16_t*>(y.data), n);
    } else {
      cast_bf16_f32(static_cast<uint16_t*>(x.data), tmp.data(), n);
      cast_f32_i32(tmp.data(), static_cast<int32_t*>(y.data), n);
    }
  }
  return info.Env().Undefined();
}

// Lowest and highest element offsets reached by (offset, strides, shape); shape non-empty, no zero dims.
void offset_range(int64_t offset, const std::vector<int64_t>& strides, const std::vector<int64_t>& shape, int64_t* lo,
                  int64_t* hi) {
  *lo = *hi = offset;
  for (size_t d = 0; d < shape.size(); d++) {
    int64_t span = strides[d] * (shape[d] - 1);
    if (span < 0)
      *lo += span;
    else
      *hi += span;
  }
}

Napi::Value StridedCopy(const Info& info) {
  Args a{info, "stridedCopy"};
  AnyView src = any_array(a, 0, "src");
  int64_t so = a.integer(1, "srcOffset");
  std::vector<int64_t> ss = a.ints(2, "srcStrides"), shape = a.ints(3, "shape");
  AnyView dst = any_array(a, 4, "dst");
  int64_t dof = a.integer(5, "dstOffset");
  std::vector<int64_t> ds = a.ints(6, "dstStrides");
  if (src.dtype != dst.dtype) fail("stridedCopy: src and dst dtypes differ");
  if (ss.size() != shape.size() || ds.size() != shape.size()) fail("stridedCopy: strides and shape ranks differ");
  for (int64_t s : shape) {
    if (s < 0) fail("stridedCopy: negative dimension in shape");
    if (s == 0) return info.Env().Undefined();
  }
  for (size_t d = 0; d < shape.size(); d++)
    if (std::llabs(ss[d]) > (int64_t(1) << 40) || std::llabs(ds[d]) > (int64_t(1) << 40) || shape[d] > (int64_t(1) << 40))
      fail("stridedCopy: stride or dimension too large");
  int64_t slo, shi, dlo, dhi;
  offset_range(so, ss, shape, &slo, &shi);
  offset_range(dof, ds, shape, &dlo, &dhi);
  if (slo < 0 || shi >= static_cast<int64_t>(src.n))
    fail("stridedCopy: source elements [" + std::to_string(slo) + ", " + std::to_string(shi) + "] outside storage of " +
         std::to_string(src.n));
  if (dlo < 0 || dhi >= static_cast<int64_t>(dst.n))
    fail("stridedCopy: destination elements [" + std::to_string(dlo) + ", " + std::to_string(dhi) +
         "] outside storage of " + std::to_string(dst.n));
  size_t es = src.dtype == 2 ? 2 : 4;
  const uint8_t* s0 = static_cast<uint8_t*>(src.data);
  const uint8_t* d0 = static_cast<uint8_t*>(dst.data);
  std::vector<uint8_t> tmp;
  // overlapping source and destination: copy the source range aside first
  if (s0 + (shi + 1) * es > d0 + dlo * es && d0 + (dhi + 1) * es > s0 + slo * es) {
    tmp.assign(s0 + slo * es, s0 + (shi + 1) * es);
    s0 = tmp.data() - slo * es;
  }
  strided_copy(s0, so, ss, shape, dst.data, dof, ds, es);
  return info.Env().Undefined();
}

// ---- elementwise ----
int unary_code(const std::string& op) {
  static const char* names[U_COUNT] = {"neg",  "exp",  "log",       "sqrt", "tanh",  "sigmoid",   "relu",
                                       "silu", "gelu", "gelu_tanh", "pow",  "scale", "add_scalar"};
  for (int i = 0; i < U_COUNT; i++)
    if (op == names[i]) return i;
  fail("unary: unknown op '" + op + "'");
}

Napi::Value Unary(const Info& info) {
  Args a{info, "unary"};
  int op = unary_code(a.str(0, "op"));
  auto x = a.f32(1, "x");
  auto y = a.f32(2, "out");
  a.need(y, x.n, "out");
  kernels().unary(op, x.data, y.data, x.n, static_cast<float>(a.num(3, "param")));
  return info.Env().Undefined();
}

Napi::Value UnaryBackward(const Info& info) {
  Args a{info, "unaryBackward"};
  int op = unary_code(a.str(0, "op"));
  auto x = a.f32(1, "x"), y = a.f32(2, "y"), dy = a.f32(3, "dy"), dx = a.f32(4, "dx");
  size_t n = dx.n;
  a.need(x, n, "x");
  a.need(y, n, "y");
  a.need(dy, n, "dy");
  kernels().unary_backward(op, x.data, y.data, dy.data, dx.data, n, static_cast<float>(a.num(5, "param")));
  return info.Env().Undefined();
}

Napi::Value Binary(const Info& info) {
  Args a{info, "binary"};
  std::string ops = a.str(0, "op");
  int op = ops == "add" ? B_ADD : ops == "sub" ? B_SUB : ops == "mul" ? B_MUL : ops == "div" ? B_DIV : -1;
  if (op < 0) fail("binary: unknown op '" + ops + "'");
  auto x = a.f32(1, "a");
  auto as = a.ints(2, "aShape");
  auto y = a.f32(3, "b");
  auto bs = a.ints(4, "bShape");
  auto out = a.f32(5, "out");
  auto os = a.ints(6, "outShape");
  if (as.size() != os.size() || bs.size() != os.size()) fail("binary: aShape, bShape and outShape ranks differ");
  std::vector<size_t> av(os.size()), bv(os.size()), ov(os.size());
  size_t na = 1, nb = 1, no = 1;
  for (size_t d = 0; d < os.size(); d++) {
    if (os[d] < 0 || as[d] < 0 || bs[d] < 0) fail("binary: negative dimension");
    if ((as[d] != os[d] && as[d] != 1) || (bs[d] != os[d] && bs[d] != 1))
      fail("binary: shapes do not broadcast to outShape at dim " + std::to_string(d));
    av[d] = static_cast<size_t>(as[d]);
    bv[d] = static_cast<size_t>(bs[d]);
    ov[d] = static_cast<size_t>(os[d]);
    na = mul(na, av[d]);
    nb = mul(nb, bv[d]);
    no = mul(no, ov[d]);
  }
  a.need(x, na, "a");
  a.need(y, nb, "b");
  a.need(out, no, "out");
  kernels().binary(op, x.data, av, y.data, bv, out.data, ov);
  return info.Env().Undefined();
}

Napi::Value Dropout(const Info& info) {
  Args a{info, "dropout"};
  auto x = a.f32(0, "x"), y = a.f32(1, "out");
  double p = a.num(2, "p");
  if (!(p >= 0 && p <= 1)) fail("dropout: p must be in [0, 1]");
  a.need(x, y.n, "x");
  kernels().dropout(x.data, y.data, y.n, p, to_uint32(a.num(3, "seed")));
  return info.Env().Undefined();
}

// ---- reduce / gemm ----
Napi::Value Reduce(const Info& info) {
  Args a{info, "reduce"};
  std::string op = a.str(0, "op");
  auto x = a.f32(1, "x");
  size_t outer = a.size(2, "outer"), r = a.size(3, "r"), inner = a.size(4, "inner");
  auto out = a.f32(5, "out");
  auto am = a.i32_opt(6, "argmax");
  a.need(x, mul(outer, r, inner), "x");
  a.need(out, mul(outer, inner), "out");
  if (op == "sum") {
    if (am) fail("reduce: argmax is only produced by max");
    kernels().reduce_sum(x.data, outer, r, inner, out.data);
  } else if (op == "max") {
    if (am) a.need(am, outer * inner, "argmax");
    if (r > 2147483647u) fail("reduce: r too large for an i32 argmax");
    if (r == 0 && outer * inner > 0) fail("reduce max: cannot reduce an empty axis");
    kernels().reduce_max(x.data, outer, r, inner, out.data, am.data);
  } else {
    fail("reduce: unknown op '" + op + "'");
  }
  return info.Env().Undefined();
}

Napi::Value MaxBackward(const Info& info) {
  Args a{info, "maxBackward"};
  auto dy = a.f32(0, "dy");
  auto am = a.i32(1, "argmax");
  auto dx = a.f32(2, "dx");
  size_t outer = a.size(3, "outer"), r = a.size(4, "r"), inner = a.size(5, "inner");
  a.need(dy, mul(outer, inner), "dy");
  a.need(am, outer * inner, "argmax");
  a.need(dx, mul(outer, r, inner), "dx");
  max_backward(dy.data, am.data, dx.data, outer, r, inner);
  return info.Env().Undefined();
}

// gemm(a, b, c, bias|null, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta[, bf16])
Napi::Value Gemm(const Info& info) {
  Args a{info, "gemm"};
  GemmCall g;
  auto A = a.f32(0, "a"), B = a.f32(1, "b"), C = a.f32(2, "c"), bias = a.f32_opt(3, "bias");
  g.batch = a.size(4, "batch");
  g.m = a.size(5, "m");
  g.n = a.size(6, "n");
  g.k = a.size(7, "k");
  g.trans_a = a.flag(8, "transA");
  g.trans_b = a.flag(9, "transB");
  g.stride_a = a.size(10, "strideA");
  g.stride_b = a.size(11, "strideB");
  g.stride_c = a.size(12, "strideC");
  g.alpha = static_cast<float>(a.num(13, "alpha"));
  g.beta = static_cast<float>(a.num(14, "beta"));
  g.bf16 = info.Length() > 15 && a.flag(15, "bf16");
  if (g.batch > 0 && g.m > 0 && g.n > 0) {
    size_t last = g.batch - 1;
    if (g.k > 0) {
      a.need(A, mul(last, g.stride_a) + mul(g.m, g.k), "a");
      a.need(B, mul(last, g.stride_b) + mul(g.k, g.n), "b");
    }
    a.need(C, mul(last, g.stride_c) + mul(g.m, g.n), "c");
    if (bias) a.need(bias, g.n, "bias");
  }
  g.a = A.data;
  g.b = B.data;
  g.c = C.data;
  g.bias = bias.data;
  gemm(g);
  return info.Env().Undefined();
}

// ---- optimiser ----
Napi::Value SumSquares(const Info& info) {
  Args a{info, "sumSquares"};
  Napi::Array xs = a.list(0, "xs");
  std::vector<const float*> ptrs(xs.Length());
  std::vector<size_t> ns(xs.Length());
  for (uint32_t i = 0; i < xs.Length(); i++) {
    Napi::Value v = xs.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail("sumSquares: xs[" + std::to_string(i) + "] must be a Float32Array");
    auto t = v.As<Napi::Float32Array>();
    ptrs[i] = t.Data();
    ns[i] = t.ElementLength();
  }
  return Napi::Number::New(info.Env(), kernels().sum_squares(ptrs.data(), ns.data(), ptrs.size()));
}

// adamw(params[], grads[], m[], v[], weightDecay[], lr, beta1, beta2, eps, step)
Napi::Value AdamW(const Info& info) {
  Args a{info, "adamw"};
  Napi::Array ps = a.list(0, "params"), gs = a.list(1, "grads"), ms = a.list(2, "m"), vs = a.list(3, "v"),
              wd = a.list(4, "weightDecay");
  uint32_t n = ps.Length();
  if (gs.Length() != n || ms.Length() != n || vs.Length() != n || wd.Length() != n)
    fail("adamw: params, grads, m, v and weightDecay must have the same length");
  auto get = [&](Napi::Array arr, uint32_t i, const char* name) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(std::string("adamw: ") + name + "[" + std::to_string(i) + "] must be a Float32Array");
    auto t = v.As<Napi::Float32Array>();
    return View<float>{t.Data(), t.ElementLength()};
  };
  std::vector<AdamWTensor> ts(n);
  for (uint32_t i = 0; i < n; i++) {
    View<float> p = get(ps, i, "params"), g = get(gs, i, "grads"), m = get(ms, i, "m"), v = get(vs, i, "v");
    if (g.n < p.n || m.n < p.n || v.n < p.n)
      fail("adamw: tensor " + std::to_string(i) + ": grads, m and v must have at least params' " + std::to_string(p.n) +
           " elements");
    Napi::Value w = wd.Get(i);
    if (!w.IsNumber()) fail("adamw: weightDecay[" + std::to_string(i) + "] must be a number");
    ts[i] = AdamWTensor{p.data, g.data, m.data, v.data, p.n, w.As<Napi::Number>().DoubleValue()};
  }
  AdamWHyper h{a.num(5, "lr"), a.num(6, "beta1"), a.num(7, "beta2"), a.num(8, "eps"), a.num(9, "step"),
               a.num(10, "gradScale")};
  if (!(h.step >= 1) || h.step != std::floor(h.step)) fail("adamw: step must be an integer >= 1");
  kernels().adamw(ts.data(), ts.size(), h);
  return info.Env().Undefined();
}

Napi::Object InitImpl(Napi::Env env, Napi::Object exports) {
  // LOOM_ISA / LOOM_GEMM / LOOM_NUM_THREADS are read here, so a bad value fails the load with its message
  current_isa();
  gemm_impl();
  num_threads();
  auto add = [&](const char* name, Napi::Value (*fn)(const Info&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  add("setNumThreads", SetNumThreads);
  add("numThreads", NumThreads);
  add("setIsa", SetIsa);
  add("isa", GetIsa);
  add("bestIsa", BestIsa);
  add("setGemm", SetGemm);
  add("gemmImpl", GemmImpl);
  add("bf16GemmNative", Bf16GemmNative);
  add("adviseHugePages", AdviseHugePages);
  add("hasBlas", HasBlas);
  add("blasInfo", BlasInfo);
  add("dropoutUniform", DropoutUniform);
  add("fill", Fill);
  add("cast", Cast);
  add("stridedCopy", StridedCopy);
  add("unary", Unary);
  add("unaryBackward", UnaryBackward);
  add("binary", Binary);
  add("dropout", Dropout);
  add("reduce", Reduce);
  add("maxBackward", MaxBackward);
  add("gemm", Gemm);
  add("sumSquares", SumSquares);
  add("adamw", AdamW);
  register_nn(env, exports);
  return exports;
}

}  // namespace
Napi::Object Init(Napi::Env env, Napi::Object exports) { return InitImpl(env, exports); }
}  // namespace loom

static Napi::Object InitLoom(Napi::Env env, Napi::Object exports) { return loom::Init(env, exports); }
NODE_API_MODULE(loom_cpu, InitLoom)
