// Softmax / log-softmax and fused softmax cross-entropy, forward and backward (ISA-generic, included by
// native/isa_*.cc). All over the last axis of a (rows, cols) view; rows run in parallel.

// max of a row; NaN if the row holds a NaN (vmax alone would drop it)
static inline float row_max(const float* x, size_t n) {
  vf m = vset(-__builtin_inff());
  vi nan = vi{} + 0;
  size_t i = 0;
  for (; i + VL <= n; i += VL) {
    vf v = vload(x + i);
    m = vmax(m, v);
    nan |= v != v;
  }
  if (i < n) {
    vf v = vload_part(x + i, n - i, -__builtin_inff());
    m = vmax(m, v);
    nan |= v != v;
  }
  for (int l = 0; l < VL; l++)
    if (nan[l]) return __builtin_nanf("");
  return hmax(m);
}

// y = exp(x - c) (y may be null), returns sum of it
static inline double exp_shift_sum(const float* x, float* y, size_t n, float c) {
  double total = 0;
  vf cv = vset(c);
  size_t i = 0;
  while (i < n) {
    size_t end = n - i > 1024 ? i + 1024 : n;
    vf acc = vset(0.f);
    for (; i + VL <= end; i += VL) {
      vf e = v_exp(vload(x + i) - cv);
      if (y) vstore(y + i, e);
      acc += e;
    }
    if (i < end) {
      vf e = v_exp(vload_part(x + i, end - i, -__builtin_inff()) - cv);
      if (y) vstore_part(y + i, e, end - i);
      acc += e;
      i = end;
    }
    total += static_cast<double>(hsum(acc));
  }
  return total;
}

// Rows are read once from memory: each 8 KB chunk is scanned for its max while in L1, exponentiated
// against that max, and the chunk sums are rescaled to the running max (one scalar exp per chunk).
constexpr size_t SM_CHUNK = 2048;

// logsumexp parts of row x (n): returns the max M and sets *sum = sum exp(x - M) (NaN row: NaN, NaN).
// y (may be null) receives exp(x - shift_c) and shifts[c] (may be null) the shift of chunk c.
static inline float row_lse(const float* x, size_t n, float* y, float* shifts, double* sum) {
  float M = -__builtin_inff();
  double S = 0;
  for (size_t c0 = 0, c = 0; c0 < n; c0 += SM_CHUNK, c++) {
    size_t len = n - c0 < SM_CHUNK ? n - c0 : SM_CHUNK;
    float cm = row_max(x + c0, len);
    if (cm != cm) {
      *sum = cm;
      return cm;
    }
    float shift = cm == -__builtin_inff() ? 0.f : cm;  // an all -inf chunk adds exp(-inf) = 0
    double cs = exp_shift_sum(x + c0, y ? y + c0 : nullptr, len, shift);
    if (shifts) shifts[c] = shift;
    if (cm == -__builtin_inff()) continue;
    if (shift > M) {
      S = S * std::exp(static_cast<double>(M) - shift) + cs;
      M = shift;
    } else {
      S += cs * std::exp(static_cast<double>(shift) - M);
    }
  }
  *sum = S;
  return M;
}

static inline int row_threads(size_t rows, size_t cols) {
  return rows < 2 ? 1 : threads_for(static_cast<double>(rows) * static_cast<double>(cols), 1 << 14);
}

// x, y (rows, cols): y = softmax(x) or log_softmax(x)
static void softmax(const float* x, float* y, size_t rows, size_t cols, bool log) {
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double sum;
    if (log) {
      float mx = row_lse(xr, cols, nullptr, nullptr, &sum);
      float shift = static_cast<float>(static_cast<double>(mx) + std::log(sum));
      vf s = vset(shift);
      size_t i = 0;
      for (; i + VL <= cols; i += VL) vstore(yr + i, vload(xr + i) - s);
      if (i < cols) vstore_part(yr + i, vload_part(xr + i, cols - i) - s, cols - i);
    } else {
      float* shifts = scratch(6, cols / SM_CHUNK + 1);
      float mx = row_lse(xr, cols, yr, shifts, &sum);
      for (size_t c0 = 0, c = 0; c0 < cols; c0 += SM_CHUNK, c++) {
        size_t end = cols - c0 < SM_CHUNK ? cols : c0 + SM_CHUNK;
        // NaN rows: mx and sum are NaN, so every output is NaN
        float f = static_cast<float>(std::exp(static_cast<double>(shifts[c]) - mx) / sum);
        if (mx != mx) f = mx;
        size_t i = c0;
        for (; i + VL <= end; i += VL) vstore(yr + i, vload(yr + i) * f);
        for (; i < end; i++) yr[i] *= f;
      }
    }
  }
}

// dx = y * (dy - sum(dy * y))  or, for log-softmax, dx = dy - exp(y) * sum(dy)
static void softmax_backward(const float* y, const float* dy, float* dx, size_t rows, size_t cols, bool log) {
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* yr = y + r * cols;
    const float* gr = dy + r * cols;
    float* dr = dx + r * cols;
    if (log) {
      vf s = vset(static_cast<float>(sum_contig(gr, cols)));
      size_t i = 0;
      for (; i + VL <= cols; i += VL) vstore(dr + i, vload(gr + i) - v_exp(vload(yr + i)) * s);
      if (i < cols) {
        size_t n = cols - i;
        vstore_part(dr + i, vload_part(gr + i, n) - v_exp(vload_part(yr + i, n)) * s, n);
      }
    } else {
      double dot = 0;
      size_t i = 0;
      while (i < cols) {
        size_t end = cols - i > 1024 ? i + 1024 : cols;
        vf acc = vset(0.f);
        for (; i + VL <= end; i += VL) acc += vload(gr + i) * vload(yr + i);
        if (i < end) {
          acc += vload_part(gr + i, end - i) * vload_part(yr + i, end - i);
          i = end;
        }
        dot += static_cast<double>(hsum(acc));
      }
      vf s = vset(static_cast<float>(dot));
      i = 0;
      for (; i + VL <= cols; i += VL) {
        vf yy = vload(yr + i);
        vstore(dr + i, yy * (vload(gr + i) - s));
      }
      if (i < cols) {
        size_t n = cols - i;
        vf yy = vload_part(yr + i, n);
        vstore_part(dr + i, yy * (vload_part(gr + i, n) - s), n);
      }
    }
  }
}

static void check_targets(const int32_t* targets, size_t rows, size_t cols, int32_t ignore_index, const char* who) {
  for (size_t r = 0; r < rows; r++) {
    int32_t t = targets[r];
    if (t != ignore_index && (t < 0 || static_cast<size_t>(t) >= cols))
      fail(std::string(who) + ": target " + std::to_string(t) + " at row " + std::to_string(r) + " is outside [0, " +
           std::to_string(cols) + ") and is not ignoreIndex " + std::to_string(ignore_index));
  }
}

// losses (rows), lse (rows) from logits (rows, cols) and targets (rows)
static void cross_entropy(const float* logits, const int32_t* targets, float* losses, float* lse, size_t rows,
                          size_t cols, int32_t ignore_index, float smoothing) {
  check_targets(targets, rows, cols, ignore_index, "crossEntropy");
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* xr = logits + r * cols;
    double sum;
    float mx = row_lse(xr, cols, nullptr, nullptr, &sum);
    double l = static_cast<double>(mx) + std::log(sum);
    lse[r] = static_cast<float>(l);
    int32_t t = targets[r];
    if (t == ignore_index) {
      losses[r] = 0.f;
      continue;
    }
    double loss = (1.0 - smoothing) * (l - static_cast<double>(xr[t]));
    if (smoothing != 0.f) loss += smoothing * (l - sum_contig(xr, cols) / static_cast<double>(cols));
    losses[r] = static_cast<float>(loss);
  }
}

// dlogits (rows, cols) = gradScale * (softmax(x) - (1-s) onehot(t) - s/V); zero rows for ignored targets
static void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse, float* dlogits,
                                   size_t rows, size_t cols, int32_t ignore_index, float smoothing,
                                   float grad_scale) {
  check_targets(targets, rows, cols, ignore_index, "crossEntropyBackward");
  float uniform = smoothing / static_cast<float>(cols);
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* xr = logits + r * cols;
    float* dr = dlogits + r * cols;
    int32_t t = targets[r];
    if (t == ignore_index) {
      for (size_t i = 0; i < cols; i++) dr[i] = 0.f;
      continue;
    }
    vf l = vset(lse[r]), u = vset(uniform);
    size_t i = 0;
    for (; i + VL <= cols; i += VL) vstore(dr + i, (v_exp(vload(xr + i) - l) - u) * grad_scale);
    if (i < cols) vstore_part(dr + i, (v_exp(vload_part(xr + i, cols - i) - l) - u) * grad_scale, cols - i);
    dr[t] -= grad_scale * (1.f - smoothing);
  }
}
