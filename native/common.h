// Shared helpers of the native CPU backend: errors, restrict, sizes. No kernels here.
// Kernels throw loom::Error (a std::runtime_error) before any parallel region; addon.cc turns it into a JS Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#define LOOM_RESTRICT __restrict__

namespace loom {

struct Error : std::runtime_error {
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] inline void fail(const std::string& msg) { throw Error(msg); }

inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

}  // namespace loom
