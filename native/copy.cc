// Data movement kernels: fill, dtype casts (f32 <-> bf16 round-to-nearest-even, f32 -> i32 truncating and
// saturating),
// and the strided N-d copy. Memory-bound, so compiled once for the baseline ISA.
#include <climits>
#include <cmath>
#include <cstring>

#include "common.h"
#include "kernels.h"
#include "threads.h"

namespace loom {

static constexpr double kGrain = 1 << 16;

template <class T>
static void fill_any(T* out, size_t n, T value) {
  int nt = threads_for(static_cast<double>(n), kGrain);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < n; i++) out[i] = value;
}
void fill_f32(float* out, size_t n, float value) { fill_any(out, n, value); }
void fill_u32(uint32_t* out, size_t n, uint32_t value) { fill_any(out, n, value); }
void fill_u16(uint16_t* out, size_t n, uint16_t value) { fill_any(out, n, value); }

uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN stays a quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

int32_t f32_to_i32(double x) {
  // truncation toward zero, NaN -> 0, saturating at the i32 range (as the reference backend)
  if (x != x) return 0;
  if (x >= 2147483647.0) return 2147483647;
  if (x <= -2147483648.0) return INT32_MIN;
  return static_cast<int32_t>(x);
}

void cast_f32_bf16(const float* x, uint16_t* y, size_t n) {
  int nt = threads_for(static_cast<double>(n), kGrain);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    y[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
  }
}

void cast_bf16_f32(const uint16_t* x, float* y, size_t n) {
  int nt = threads_for(static_cast<double>(n), kGrain);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < n; i++) {
    uint32_t u = static_cast<uint32_t>(x[i]) << 16;
    std::memcpy(y + i, &u, 4);
  }
}

void cast_f32_i32(const float* x, int32_t* y, size_t n) {
  int nt = threads_for(static_cast<double>(n), kGrain);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = f32_to_i32(x[i]);
}

void cast_i32_f32(const int32_t* x, float* y, size_t n) {
  int nt = threads_for(static_cast<double>(n), kGrain);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = static_cast<float>(x[i]);
}

// ---- strided copy ----
template <class T>
static void strided_rows(const T* src, T* dst, const std::vector<int64_t>& shape,
                         const std::vector<int64_t>& ss, const std::vector<int64_t>& ds) {
  size_t nd = shape.size();
  int64_t inner = shape[nd - 1], si = ss[nd - 1], di = ds[nd - 1];
  size_t outer = 1;
  for (size_t d = 0; d + 1 < nd; d++) outer *= static_cast<size_t>(shape[d]);
  int nt = threads_for(static_cast<double>(outer) * inner, kGrain);
#pragma omp parallel num_threads(nt)
  {
    size_t r0, r1;
    thread_range(outer, &r0, &r1);
    if (r0 < r1) {
      std::vector<int64_t> idx(nd, 0);
      int64_t so = 0, dof = 0;
      size_t rem = r0;
      for (size_t d = nd - 1; d-- > 0;) {
        idx[d] = static_cast<int64_t>(rem % static_cast<size_t>(shape[d]));
        rem /= static_cast<size_t>(shape[d]);
        so += idx[d] * ss[d];
        dof += idx[d] * ds[d];
      }
      for (size_t r = r0; r < r1; r++) {
        const T* s = src + so;
        T* o = dst + dof;
        if (si == 1 && di == 1)
          std::memcpy(o, s, static_cast<size_t>(inner) * sizeof(T));
        else if (si == 0) {
          T v = s[0];
          for (int64_t i = 0; i < inner; i++) o[i * di] = v;
        } else
          for (int64_t i = 0; i < inner; i++) o[i * di] = s[i * si];
        for (size_t d = nd - 1; d-- > 0;) {
          so += ss[d];
          dof += ds[d];
          if (++idx[d] < shape[d]) break;
          so -= ss[d] * shape[d];
          dof -= ds[d] * shape[d];
          idx[d] = 0;
        }
      }
    }
  }
}

void strided_copy(const void* src, int64_t src_offset, const std::vector<int64_t>& src_strides,
                  const std::vector<int64_t>& shape, void* dst, int64_t dst_offset,
                  const std::vector<int64_t>& dst_strides, size_t elem_size) {
  // drop size-1 dims, merge dims that are contiguous in both src and dst
  std::vector<int64_t> sh, ss, ds;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return;
    if (shape[d] == 1) continue;
    if (!sh.empty() && ss.back() == src_strides[d] * shape[d] && ds.back() == dst_strides[d] * shape[d]) {
      sh.back() *= shape[d];
      ss.back() = src_strides[d];
      ds.back() = dst_strides[d];
    } else {
      sh.push_back(shape[d]);
      ss.push_back(src_strides[d]);
      ds.push_back(dst_strides[d]);
    }
  }
  if (sh.empty()) {
    sh.push_back(1);
    ss.push_back(1);
    ds.push_back(1);
  }
  if (elem_size == 4)
    strided_rows(static_cast<const uint32_t*>(src) + src_offset, static_cast<uint32_t*>(dst) + dst_offset, sh,
                 ss, ds);
  else
    strided_rows(static_cast<const uint16_t*>(src) + src_offset, static_cast<uint16_t*>(dst) + dst_offset, sh,
                 ss, ds);
}

}  // namespace loom
