// Thread-count setting: LOOM_NUM_THREADS at load, setNumThreads() later; also sets OpenBLAS's count.
#include "threads.h"

#include <cstdlib>
#include <new>
#include <thread>

#if defined(LOOM_HAVE_BLAS) && LOOM_HAVE_BLAS && defined(LOOM_BLAS_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
#endif

namespace loom {

static int hardware_threads() {
#ifdef _OPENMP
  int n = omp_get_num_procs();
#else
  int n = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return n > 0 ? n : 1;
}

static int initial_threads() {
  const char* env = std::getenv("LOOM_NUM_THREADS");
  if (env && *env) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return hardware_threads();
}

static int g_threads = 0;

namespace {
struct ScratchSlots {
  float* ptr[kScratchSlots] = {};
  size_t size[kScratchSlots] = {};
  ~ScratchSlots() {
    for (int i = 0; i < kScratchSlots; i++) std::free(ptr[i]);
  }
};
thread_local ScratchSlots t_scratch;
}  // namespace

float* scratch(int slot, size_t floats) {
  ScratchSlots& s = t_scratch;
  if (floats > s.size[slot] || !s.ptr[slot]) {
    std::free(s.ptr[slot]);
    size_t bytes = (floats * sizeof(float) + 4095) / 4096 * 4096 + 4096;
    s.ptr[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!s.ptr[slot]) throw std::bad_alloc();
    s.size[slot] = bytes / sizeof(float);
  }
  return s.ptr[slot];
}

int num_threads() {
  if (g_threads == 0) set_num_threads(initial_threads());
  return g_threads;
}

void set_num_threads(int n) {
  if (n < 1) n = 1;
  g_threads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
#if defined(LOOM_HAVE_BLAS) && LOOM_HAVE_BLAS && defined(LOOM_BLAS_OPENBLAS)
  openblas_set_num_threads(n);
#endif
}

}  // namespace loom
