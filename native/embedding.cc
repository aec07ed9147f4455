// Index kernels: embedding lookup and its backward (scatter-add), and the backward of max (scatter by argmax).
// Indices are checked here, before any thread starts, so a bad one becomes a JS Error naming it and its
// row instead of an out-of-bounds access.
#include <cstring>
#include <string>

#include "common.h"
#include "kernels.h"
#include "threads.h"

namespace loom {

static void check_ids(const int32_t* ids, size_t n, size_t vocab, const char* who) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= vocab)
      fail(std::string(who) + ": id " + std::to_string(ids[i]) + " at row " + std::to_string(i) + " is outside [0, " +
           std::to_string(vocab) + ")");
}

// out (n, dim) = table (vocab, dim) [ids (n)]
void embedding(const int32_t* ids, const float* table, float* out, size_t n, size_t dim, size_t vocab) {
  check_ids(ids, n, vocab, "embedding");
  int nt = threads_for(static_cast<double>(n) * dim, 1 << 15);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < n; i++)
    std::memcpy(out + i * dim, table + static_cast<size_t>(ids[i]) * dim, dim * sizeof(float));
}

// dtable (vocab, dim) = 0, then dtable[ids[i]] += dy[i] for i in order. Threads own column ranges, so the
// sum order (and result) does not depend on the thread count.
void embedding_backward(const int32_t* ids, const float* dy, float* dtable, size_t n, size_t dim, size_t vocab) {
  check_ids(ids, n, vocab, "embeddingBackward");
  fill_f32(dtable, vocab * dim, 0.f);
  int nt = threads_for(static_cast<double>(n) * dim, 1 << 15);
  if (static_cast<size_t>(nt) > dim / 16) nt = dim / 16 > 0 ? static_cast<int>(dim / 16) : 1;
#pragma omp parallel num_threads(nt)
  {
    size_t c0, c1;
    thread_range(dim, &c0, &c1);
    for (size_t i = 0; i < n; i++) {
      float* LOOM_RESTRICT row = dtable + static_cast<size_t>(ids[i]) * dim;
      const float* LOOM_RESTRICT g = dy + i * dim;
      for (size_t c = c0; c < c1; c++) row[c] += g[c];
    }
  }
}

// dx (outer, r, inner) = dy (outer, inner) at j == argmax (outer, inner), else 0
void max_backward(const float* dy, const int32_t* argmax, float* dx, size_t outer, size_t r, size_t inner) {
  for (size_t q = 0; q < outer * inner; q++)
    if (argmax[q] < 0 || static_cast<size_t>(argmax[q]) >= r)
      fail("maxBackward: argmax " + std::to_string(argmax[q]) + " at " + std::to_string(q) + " is outside [0, " +
           std::to_string(r) + ")");
  int nt = threads_for(static_cast<double>(outer) * r * inner, 1 << 16);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t o = 0; o < outer; o++) {
    float* d = dx + o * r * inner;
    std::memset(d, 0, r * inner * sizeof(float));
    for (size_t i = 0; i < inner; i++) d[static_cast<size_t>(argmax[o * inner + i]) * inner + i] = dy[o * inner + i];
  }
}

}  // namespace loom
