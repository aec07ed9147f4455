// Counter-based dropout randoms, the C++ twin of dropoutUniform in src/backends/backend.ts (bit-identical).
// Used by the dropout kernel and by attention (forward and backward regenerate the same mask).
#pragma once

#include <cmath>
#include <cstdint>

namespace loom {

// murmur3 fmix32
inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/** The 24 random bits of element `index` (u = bits * 2^-24). */
inline uint32_t dropout_bits(uint32_t seed, uint64_t index) {
  uint32_t lo = static_cast<uint32_t>(index), hi = static_cast<uint32_t>(index >> 32);
  return mix32(lo ^ mix32(seed + hi * 0x9e3779b9u)) >> 8;
}

/** Uniform in [0, 1) from (seed, index), exactly dropoutUniform(seed, index). */
inline double dropout_uniform(uint32_t seed, uint64_t index) {
  return dropout_bits(seed, index) * (1.0 / 16777216.0);
}

/** keep = dropout_uniform(seed, i) >= p  <=>  dropout_bits(seed, i) >= dropout_threshold(p). */
inline uint32_t dropout_threshold(double p) {
  if (!(p > 0)) return 0;
  double t = std::ceil(p * 16777216.0);
  return t >= 16777216.0 ? 16777216u : static_cast<uint32_t>(t);
}

/** JS ToUint32 of a seed given as a double. */
inline uint32_t to_uint32(double x) {
  if (!std::isfinite(x)) return 0;
  double t = std::trunc(x);
  double m = std::fmod(t, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<uint32_t>(m);
}

}  // namespace loom
