// LayerNorm and RMSNorm, forward and backward (ISA-generic, included by native/isa_*.cc), llm.c style.
// Row statistics accumulate in double; dw/db are summed per column chunk over all rows (deterministic).

// out (rows, cols) = (x - mean) * rstd * w + b; mean, rstd (rows)
static void layernorm(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                      size_t rows, size_t cols, float eps) {
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = out + r * cols;
    float m = static_cast<float>(sum_contig(xr, cols) / static_cast<double>(cols));
    double var = sumsq_centered(xr, cols, m) / static_cast<double>(cols);
    float rs = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    mean[r] = m;
    rstd[r] = rs;
    vf mv = vset(m), rv = vset(rs);
    size_t i = 0;
    for (; i + VL <= cols; i += VL) {
      vf y = (vload(xr + i) - mv) * rv;
      if (w) y = y * vload(w + i);
      if (b) y = y + vload(b + i);
      vstore(yr + i, y);
    }
    for (; i < cols; i++) {
      float y = (xr[i] - m) * rs;
      if (w) y = y * w[i];
      if (b) y = y + b[i];
      yr[i] = y;
    }
  }
}

// dw[c] = sum_r dy[r,c] * xhat[r,c] (xhat = (x - shift[r]) * rstd[r]), db[c] = sum_r dy[r,c]; either may be null
static void norm_param_grads(const float* dy, const float* x, const float* shift, const float* rstd, float* dw,
                             float* db, size_t rows, size_t cols) {
  if (!dw && !db) return;
  constexpr size_t CH = 128;
  size_t nchunks = (cols + CH - 1) / CH;
  int nt = threads_for(static_cast<double>(rows) * static_cast<double>(cols), 1 << 14);
  if (nt > static_cast<int>(nchunks)) nt = static_cast<int>(nchunks);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t c0 = ch * CH, n = cols - c0 < CH ? cols - c0 : CH;
    double aw[CH], ab[CH];
    for (size_t c = 0; c < n; c++) aw[c] = ab[c] = 0;
    for (size_t r = 0; r < rows; r++) {
      const float* g = dy + r * cols + c0;
      const float* xr = x + r * cols + c0;
      float s = shift ? shift[r] : 0.f, rs = rstd[r];
      for (size_t c = 0; c < n; c++) {
        aw[c] += static_cast<double>(g[c] * ((xr[c] - s) * rs));
        ab[c] += static_cast<double>(g[c]);
      }
    }
    for (size_t c = 0; c < n; c++) {
      if (dw) dw[c0 + c] = static_cast<float>(aw[c]);
      if (db) db[c0 + c] = static_cast<float>(ab[c]);
    }
  }
}

// dx = (dy*w - mean(dy*w) - xhat * mean(dy*w*xhat)) * rstd; dw, db summed over rows
static void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                               float* dx, float* dw, float* db, size_t rows, size_t cols) {
  norm_param_grads(dy, x, mean, rstd, dw, db, rows, cols);
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* g = dy + r * cols;
    const float* xr = x + r * cols;
    float* dr = dx + r * cols;
    vf mv = vset(mean[r]), rv = vset(rstd[r]);
    vf s1 = vset(0.f), s2 = vset(0.f);
    size_t i = 0;
    for (; i + VL <= cols; i += VL) {
      vf gw = w ? vload(g + i) * vload(w + i) : vload(g + i);
      vf xh = (vload(xr + i) - mv) * rv;
      s1 += gw;
      s2 += gw * xh;
    }
    float t1 = hsum(s1), t2 = hsum(s2);
    for (size_t j = i; j < cols; j++) {
      float gw = w ? g[j] * w[j] : g[j];
      t1 += gw;
      t2 += gw * ((xr[j] - mean[r]) * rstd[r]);
    }
    vf m1 = vset(t1 / static_cast<float>(cols)), m2 = vset(t2 / static_cast<float>(cols));
    for (i = 0; i + VL <= cols; i += VL) {
      vf gw = w ? vload(g + i) * vload(w + i) : vload(g + i);
      vf xh = (vload(xr + i) - mv) * rv;
      vstore(dr + i, (gw - m1 - xh * m2) * rv);
    }
    for (; i < cols; i++) {
      float gw = w ? g[i] * w[i] : g[i];
      float xh = (xr[i] - mean[r]) * rstd[r];
      dr[i] = (gw - m1[0] - xh * m2[0]) * rstd[r];
    }
  }
}

// out (rows, cols) = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps)
static void rmsnorm(const float* x, const float* w, float* out, float* rstd, size_t rows, size_t cols, float eps) {
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = out + r * cols;
    double ms = sumsq_centered(xr, cols, 0.f) / static_cast<double>(cols);
    float rs = static_cast<float>(1.0 / std::sqrt(ms + static_cast<double>(eps)));
    rstd[r] = rs;
    vf rv = vset(rs);
    size_t i = 0;
    for (; i + VL <= cols; i += VL) vstore(yr + i, w ? vload(xr + i) * rv * vload(w + i) : vload(xr + i) * rv);
    for (; i < cols; i++) yr[i] = w ? xr[i] * rs * w[i] : xr[i] * rs;
  }
}

// dx = rstd * (dy*w - xhat * mean(dy*w*xhat)), xhat = x * rstd; dw summed over rows
static void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                             size_t rows, size_t cols) {
  norm_param_grads(dy, x, nullptr, rstd, dw, nullptr, rows, cols);
#pragma omp parallel for num_threads(row_threads(rows, cols)) schedule(static)
  for (size_t r = 0; r < rows; r++) {
    const float* g = dy + r * cols;
    const float* xr = x + r * cols;
    float* dr = dx + r * cols;
    vf rv = vset(rstd[r]);
    vf s2 = vset(0.f);
    size_t i = 0;
    for (; i + VL <= cols; i += VL) {
      vf gw = w ? vload(g + i) * vload(w + i) : vload(g + i);
      s2 += gw * (vload(xr + i) * rv);
    }
    float t2 = hsum(s2);
    for (size_t j = i; j < cols; j++) t2 += (w ? g[j] * w[j] : g[j]) * (xr[j] * rstd[r]);
    vf m2 = vset(t2 / static_cast<float>(cols));
    for (i = 0; i + VL <= cols; i += VL) {
      vf gw = w ? vload(g + i) * vload(w + i) : vload(g + i);
      vf xh = vload(xr + i) * rv;
      vstore(dr + i, (gw - xh * m2) * rv);
    }
    for (; i < cols; i++) {
      float gw = w ? g[i] * w[i] : g[i];
      dr[i] = (gw - xr[i] * rstd[r] * m2[0]) * rstd[r];
    }
  }
}
