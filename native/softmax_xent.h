// Softmax / log-softmax and fused softmax cross-entropy, forward and backward (ISA-generic, included by
// native/isa_*.cc). All over the last axis of a (rows, cols) view; rows run in parallel.

static inline float row_max(const float* x, size_t n) {
  vf m = vset(-__builtin_inff());
  size_t i = 0;
  for (; i + VL <= n; i += VL) m = vmax(m, vload(x + i));
  if (i < n) m = vmax(m, vload_part(x + i, n - i, -__builtin_inff()));
  float r = hmax(m);
  // NaN anywhere makes the row NaN (vmax drops NaNs)
  for (size_t j = 0; j < n && r == r; j++)
    if (x[j] != x[j]) r = x[j];
  return r;
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

static inline int row_threads(size_t rows, size_t cols) {
  return rows < 2 ? 1 : threads_for(static_cast<double>(rows) * static_cast<double>(cols), 1 << 14);
}

// x, y (rows, cols): y = softmax(x) or log_softmax(x)
static void softmax(const float* x, float* y, size_t rows, size_t cols, bool log) {
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float mx = row_max(xr, cols);
    if (log) {
      float shift = mx + static_cast<float>(std::log(exp_shift_sum(xr, nullptr, cols, mx)));
      vf s = vset(shift);
      size_t i = 0;
      for (; i + VL <= cols; i += VL) vstore(yr + i, vload(xr + i) - s);
      if (i < cols) vstore_part(yr + i, vload_part(xr + i, cols - i) - s, cols - i);
    } else {
      float inv = static_cast<float>(1.0 / exp_shift_sum(xr, yr, cols, mx));
      size_t i = 0;
      for (; i + VL <= cols; i += VL) vstore(yr + i, vload(yr + i) * inv);
      for (; i < cols; i++) yr[i] *= inv;
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
    float mx = row_max(xr, cols);
    double l = static_cast<double>(mx) + std::log(exp_shift_sum(xr, nullptr, cols, mx));
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
