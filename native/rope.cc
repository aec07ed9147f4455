// Rotary position embedding, "rotate_half" convention (HF Llama/NeoX), forward and inverse (= backward).
// x, out (B, H, T, headDim), or (B, T, H, headDim) with token_major (heads as the projection wrote them,
// so attention can read them without a permute copy); angle = positions[b*T + t] * invFreq[i] in float32 (as HF computes it), then
// float cos/sin of it (libm, < 1 ulp). The first rotaryDim dims rotate, the rest are copied.
#include <cmath>
#include <vector>

#include "common.h"
#include "kernels.h"
#include "threads.h"

namespace loom {

void rope(const float* x, float* out, const float* inv_freq, const int32_t* positions, size_t batch, size_t heads,
          size_t t, size_t head_dim, size_t rotary_dim, bool inverse, bool token_major) {
  const size_t half = rotary_dim / 2;
  // cos/sin tables (B*T, half): computed once, shared by all heads
  std::vector<float> cs(batch * t * half * 2);
  int nt = threads_for(static_cast<double>(batch) * t * half, 2048);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t bt = 0; bt < batch * t; bt++) {
    float pos = static_cast<float>(positions[bt]);
    float* c = cs.data() + bt * half * 2;
    for (size_t i = 0; i < half; i++) {
      float ang = pos * inv_freq[i];
      c[i] = std::cos(ang);
      c[half + i] = inverse ? -std::sin(ang) : std::sin(ang);
    }
  }
  const size_t rows = batch * heads * t;
  nt = threads_for(static_cast<double>(rows) * head_dim, 1 << 15);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    size_t b = r / (heads * t), ti = token_major ? r / heads % t : r % t;
    const float* c = cs.data() + (b * t + ti) * half * 2;
    const float* s = c + half;
    const float* xr = x + r * head_dim;
    float* yr = out + r * head_dim;
    if (xr == yr) {  // in place: rotate through registers pairwise
      float* y = out + r * head_dim;
      for (size_t i = 0; i < half; i++) {
        float a = y[i], bb = y[i + half];
        y[i] = a * c[i] - bb * s[i];
        y[i + half] = bb * c[i] + a * s[i];
      }
      continue;
    }
    for (size_t i = 0; i < half; i++) yr[i] = xr[i] * c[i] - xr[i + half] * s[i];
    for (size_t i = 0; i < half; i++) yr[i + half] = xr[i + half] * c[i] + xr[i] * s[i];
    for (size_t i = rotary_dim; i < head_dim; i++) yr[i] = xr[i];
  }
}

}  // namespace loom
