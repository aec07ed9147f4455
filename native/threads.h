// Thread count and OpenMP helpers of the native CPU backend (one libgomp pool, shared with OpenBLAS's OpenMP build).
// Builds without OpenMP (Apple clang without libomp) run every kernel on one thread.
#pragma once

#include <cstddef>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace loom {

/** Threads every kernel may use (LOOM_NUM_THREADS, else all cores). */
int num_threads();
/** Sets the thread count for our kernels and for the BLAS. */
void set_num_threads(int n);

/** Threads worth using for `work` units when each thread should get at least `grain` of them. */
inline int threads_for(double work, double grain) {
  int n = num_threads();
  double t = work / grain;
  if (t < 2) return 1;
  return t < n ? static_cast<int>(t) : n;
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/** Splits [0, n) into team_size() contiguous ranges; the calling thread's share. */
inline void thread_range(size_t n, size_t* begin, size_t* end) {
  size_t t = static_cast<size_t>(team_size()), id = static_cast<size_t>(thread_id());
  size_t chunk = n / t, rem = n % t;
  *begin = id * chunk + (id < rem ? id : rem);
  *end = *begin + chunk + (id < rem ? 1 : 0);
}

/**
 * A 64-byte aligned per-thread buffer of at least `floats` floats, reused across calls (grow-only), so hot
 * kernels do not page-fault fresh allocations every call. Slots let one thread hold several at once.
 */
float* scratch(int slot, size_t floats);
constexpr int kScratchSlots = 8;

}  // namespace loom
