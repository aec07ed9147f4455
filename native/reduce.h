// Reductions (ISA-generic, included by native/isa_*.cc): sum / max(+argmax) over the middle axis of
// x (outer, r, inner), and the multi-tensor sum of squares. Sums run in float vectors over short blocks and
// in double across blocks, so long reductions stay accurate.

// sum of n contiguous floats (double result)
static inline double sum_contig(const float* x, size_t n) {
  double total = 0;
  size_t i = 0;
  while (i < n) {
    size_t end = n - i > 1024 ? i + 1024 : n;
    vf a0 = vset(0.f), a1 = vset(0.f);
    for (; i + 2 * VL <= end; i += 2 * VL) {
      a0 += vload(x + i);
      a1 += vload(x + i + VL);
    }
    for (; i + VL <= end; i += VL) a0 += vload(x + i);
    if (i < end) {
      a1 += vload_part(x + i, end - i);
      i = end;
    }
    total += static_cast<double>(hsum(a0 + a1));
  }
  return total;
}

// sum of (x - c)^2 over n contiguous floats
static inline double sumsq_centered(const float* x, size_t n, float c) {
  double total = 0;
  size_t i = 0;
  vf cv = vset(c);
  while (i < n) {
    size_t end = n - i > 1024 ? i + 1024 : n;
    vf a0 = vset(0.f), a1 = vset(0.f);
    for (; i + VL <= end; i += VL) {
      vf d = vload(x + i) - cv;
      a0 += d * d;
    }
    if (i < end) {
      vf d = vload_part(x + i, end - i, c) - cv;
      a1 += d * d;
      i = end;
    }
    total += static_cast<double>(hsum(a0 + a1));
  }
  return total;
}

// out (outer, inner) = sum_j x (outer, r, inner)
static void reduce_sum(const float* x, size_t outer, size_t r, size_t inner, float* out) {
  size_t total = outer * r * inner;
  int nt = threads_for(static_cast<double>(total), 1 << 15);
  if (inner == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t o = 0; o < outer; o++) out[o] = static_cast<float>(sum_contig(x + o * r, r));
    return;
  }
  // columns in chunks: double accumulators of one chunk stay in L1
  constexpr size_t CH = 256;
  size_t nchunks = (inner + CH - 1) / CH;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t t = 0; t < outer * nchunks; t++) {
    size_t o = t / nchunks, c0 = (t % nchunks) * CH, c1 = c0 + CH < inner ? c0 + CH : inner;
    double acc[CH];
    for (size_t c = c0; c < c1; c++) acc[c - c0] = 0;
    const float* xo = x + o * r * inner;
    for (size_t j = 0; j < r; j++) {
      const float* row = xo + j * inner;
      for (size_t c = c0; c < c1; c++) acc[c - c0] += static_cast<double>(row[c]);
    }
    for (size_t c = c0; c < c1; c++) out[o * inner + c] = static_cast<float>(acc[c - c0]);
  }
}

// out (outer, inner) = max_j x (outer, r, inner); argmax = first j reaching it (NaN wins, like torch.max)
static void reduce_max(const float* x, size_t outer, size_t r, size_t inner, float* out, int32_t* argmax) {
  size_t total = outer * r * inner;
  int nt = threads_for(static_cast<double>(total), 1 << 15);
  if (inner == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t o = 0; o < outer; o++) {
      const float* row = x + o * r;
      float best = r ? row[0] : -__builtin_inff();
      size_t bi = 0;
      if (best == best) {
        for (size_t j = 1; j < r; j++) {
          float v = row[j];
          if (v > best) {
            best = v;
            bi = j;
          } else if (v != v) {
            best = v;
            bi = j;
            break;
          }
        }
      }
      out[o] = best;
      if (argmax) argmax[o] = static_cast<int32_t>(bi);
    }
    return;
  }
  constexpr size_t CH = 256;
  size_t nchunks = (inner + CH - 1) / CH;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t t = 0; t < outer * nchunks; t++) {
    size_t o = t / nchunks, c0 = (t % nchunks) * CH, c1 = c0 + CH < inner ? c0 + CH : inner;
    float best[CH];
    int32_t bi[CH];
    const float* xo = x + o * r * inner;
    for (size_t c = c0; c < c1; c++) {
      best[c - c0] = r ? xo[c] : -__builtin_inff();
      bi[c - c0] = 0;
    }
    for (size_t j = 1; j < r; j++) {
      const float* row = xo + j * inner;
      for (size_t c = c0; c < c1; c++) {
        float v = row[c], b = best[c - c0];
        bool take = v > b || (v != v && b == b);
        best[c - c0] = take ? v : b;
        bi[c - c0] = take ? static_cast<int32_t>(j) : bi[c - c0];
      }
    }
    for (size_t c = c0; c < c1; c++) {
      out[o * inner + c] = best[c - c0];
      if (argmax) argmax[o * inner + c] = bi[c - c0];
    }
  }
}

// sum over tensors of sum x^2, double accumulation; fixed chunking so the result does not depend on threads
static double sum_squares(const float* const* xs, const size_t* ns, size_t count) {
  constexpr size_t CH = 1 << 14;
  std::vector<std::pair<size_t, size_t>> chunks;  // (tensor, start)
  for (size_t t = 0; t < count; t++)
    for (size_t s = 0; s < ns[t]; s += CH) chunks.push_back({t, s});
  std::vector<double> part(chunks.size());
  size_t total = 0;
  for (size_t t = 0; t < count; t++) total += ns[t];
  int nt = threads_for(static_cast<double>(total), 1 << 16);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t c = 0; c < chunks.size(); c++) {
    const float* x = xs[chunks[c].first] + chunks[c].second;
    size_t n = ns[chunks[c].first] - chunks[c].second;
    if (n > CH) n = CH;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; l++) acc[l] += static_cast<double>(x[i + l]) * static_cast<double>(x[i + l]);
    for (; i < n; i++) acc[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    part[c] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}
