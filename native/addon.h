// Argument helpers of the N-API bindings (addon.cc, addon_nn.cc): typed-array views, integer sizes and
// the storage-size checks every binding runs before a kernel sees a pointer. Failures throw loom::Error,
// which node-addon-api turns into a JS Error (NODE_ADDON_API_CPP_EXCEPTIONS_ALL).
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace loom {

template <class T>
struct View {
  T* data = nullptr;
  size_t n = 0;
  explicit operator bool() const { return data != nullptr || n != 0; }
};

struct Args {
  const Napi::CallbackInfo& info;
  const char* fn;

  [[noreturn]] void bad(size_t i, const char* name, const std::string& what) const {
    fail(std::string(fn) + ": argument " + std::to_string(i) + " (" + name + ") " + what);
  }

  template <class T>
  View<T> array(size_t i, const char* name, napi_typedarray_type type, const char* type_name, bool optional) const {
    Napi::Value v = info[i];
    if (optional && (v.IsNull() || v.IsUndefined())) return {};
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      bad(i, name, std::string("must be a ") + type_name + (optional ? " or null" : ""));
    auto a = v.As<Napi::TypedArrayOf<T>>();
    View<T> r;
    r.data = a.Data();
    r.n = a.ElementLength();
    return r;
  }
  View<float> f32(size_t i, const char* name) const {
    return array<float>(i, name, napi_float32_array, "Float32Array", false);
  }
  View<float> f32_opt(size_t i, const char* name) const {
    return array<float>(i, name, napi_float32_array, "Float32Array", true);
  }
  View<int32_t> i32(size_t i, const char* name) const {
    return array<int32_t>(i, name, napi_int32_array, "Int32Array", false);
  }
  View<int32_t> i32_opt(size_t i, const char* name) const {
    return array<int32_t>(i, name, napi_int32_array, "Int32Array", true);
  }

  double num(size_t i, const char* name) const {
    Napi::Value v = info[i];
    if (!v.IsNumber()) bad(i, name, "must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  /** A non-negative integer below 2^53. */
  size_t size(size_t i, const char* name) const {
    double d = num(i, name);
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      bad(i, name, "must be a non-negative integer, got " + std::to_string(d));
    return static_cast<size_t>(d);
  }
  int64_t integer(size_t i, const char* name) const {
    double d = num(i, name);
    if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0) bad(i, name, "must be an integer");
    return static_cast<int64_t>(d);
  }
  bool flag(size_t i, const char* name) const {
    Napi::Value v = info[i];
    if (!v.IsBoolean()) bad(i, name, "must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::string str(size_t i, const char* name) const {
    Napi::Value v = info[i];
    if (!v.IsString()) bad(i, name, "must be a string");
    return v.As<Napi::String>().Utf8Value();
  }
  std::vector<int64_t> ints(size_t i, const char* name) const {
    Napi::Value v = info[i];
    if (!v.IsArray()) bad(i, name, "must be an array of integers");
    auto a = v.As<Napi::Array>();
    std::vector<int64_t> r(a.Length());
    for (uint32_t j = 0; j < a.Length(); j++) {
      Napi::Value e = a.Get(j);
      double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
      if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0) bad(i, name, "must be an array of integers");
      r[j] = static_cast<int64_t>(d);
    }
    return r;
  }
  /** Elements of a JS array argument (for multi-tensor kernels). */
  Napi::Array list(size_t i, const char* name) const {
    Napi::Value v = info[i];
    if (!v.IsArray()) bad(i, name, "must be an array");
    return v.As<Napi::Array>();
  }

  /** Throws unless the storage holds at least `need` elements. */
  template <class T>
  void need(const View<T>& v, size_t need, const char* name) const {
    if (v.n < need)
      fail(std::string(fn) + ": " + name + " has " + std::to_string(v.n) + " elements, the call needs " +
           std::to_string(need));
  }
};

/** a * b (* c ...), throwing on size_t overflow. */
inline size_t mul(size_t a, size_t b) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("size overflow");
  return r;
}
inline size_t mul(size_t a, size_t b, size_t c) { return mul(mul(a, b), c); }
inline size_t mul(size_t a, size_t b, size_t c, size_t d) { return mul(mul(a, b, c), d); }

void register_nn(Napi::Env env, Napi::Object exports);

}  // namespace loom
