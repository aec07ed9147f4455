// Elementwise kernels (ISA-generic, included by native/isa_*.cc): unary ops and their backward, broadcast
// binary ops, dropout. Outputs may alias inputs: each vector is loaded before its result is stored.

// Runs body(begin, end) over [0, n) split across threads in VL-aligned pieces of at least `grain`.
template <class F>
static void parallel_range(size_t n, size_t grain, F body) {
  int nt = threads_for(static_cast<double>(n), static_cast<double>(grain));
  if (nt <= 1) {
    body(size_t(0), n);
    return;
  }
  size_t blocks = (n + VL - 1) / VL;
#pragma omp parallel num_threads(nt)
  {
    size_t b, e;
    thread_range(blocks, &b, &e);
    b *= VL;
    e = e * VL < n ? e * VL : n;
    if (b < e) body(b, e);
  }
}

// y = f(x) over n floats, tail done on a padded vector.
template <class F>
static inline void map1(const float* x, float* y, size_t n, size_t grain, F f) {
  parallel_range(n, grain, [&](size_t b, size_t e) {
    size_t i = b;
    for (; i + VL <= e; i += VL) vstore(y + i, f(vload(x + i)));
    if (i < e) vstore_part(y + i, f(vload_part(x + i, e - i)), e - i);
  });
}

// dx = f(x, y, dy)
template <class F>
static inline void map3(const float* x, const float* y, const float* dy, float* dx, size_t n, size_t grain, F f) {
  parallel_range(n, grain, [&](size_t b, size_t e) {
    size_t i = b;
    for (; i + VL <= e; i += VL) vstore(dx + i, f(vload(x + i), vload(y + i), vload(dy + i)));
    if (i < e) {
      size_t r = e - i;
      vstore_part(dx + i, f(vload_part(x + i, r), vload_part(y + i, r), vload_part(dy + i, r)), r);
    }
  });
}

constexpr size_t kCheap = 1 << 16;  // grain for memory-bound ops
constexpr size_t kMath = 1 << 13;   // grain for ops with exp/tanh/...

static const float kGeluTanhBeta = 0.7978845608028654f;  // sqrt(2/pi)
static const float kGeluTanhKappa = 0.044715f;

// ---- unary forward: x (n) -> y (n) ----
static void unary(int op, const float* x, float* y, size_t n, float p) {
  switch (op) {
    case U_NEG: return map1(x, y, n, kCheap, [](vf v) { return -v; });
    case U_EXP: return map1(x, y, n, kMath, [](vf v) { return v_exp(v); });
    case U_LOG: return map1(x, y, n, kMath, [](vf v) { return v_log(v); });
    case U_SQRT:
      parallel_range(n, kCheap, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; i++) y[i] = __builtin_sqrtf(x[i]);
      });
      return;
    case U_TANH: return map1(x, y, n, kMath, [](vf v) { return v_tanh(v); });
    case U_SIGMOID: return map1(x, y, n, kMath, [](vf v) { return v_sigmoid(v); });
    case U_RELU: return map1(x, y, n, kCheap, [](vf v) { return ((v > 0.f) | (v != v)) ? v : vset(0.f); });
    case U_SILU: return map1(x, y, n, kMath, [](vf v) { return v / (1.f + v_exp(-v)); });
    case U_GELU: return map1(x, y, n, kMath, [](vf v) { return v * v_phi(v); });
    case U_GELU_TANH:
      // 0.5 x (1 + tanh u) = x sigmoid(2u): no cancellation for large negative x
      return map1(x, y, n, kMath, [](vf v) {
        vf u = kGeluTanhBeta * (v + kGeluTanhKappa * v * v * v);
        return v / (1.f + v_exp(-2.f * u));
      });
    case U_SCALE: return map1(x, y, n, kCheap, [p](vf v) { return v * p; });
    case U_ADD_SCALAR: return map1(x, y, n, kCheap, [p](vf v) { return v + p; });
    case U_POW:
      // PyTorch's special cases of pow(tensor, scalar), then libm pow
      if (p == 1.f) return map1(x, y, n, kCheap, [](vf v) { return v; });
      if (p == 2.f) return map1(x, y, n, kCheap, [](vf v) { return v * v; });
      if (p == 3.f) return map1(x, y, n, kCheap, [](vf v) { return v * v * v; });
      if (p == -1.f) return map1(x, y, n, kCheap, [](vf v) { return 1.f / v; });
      if (p == -2.f) return map1(x, y, n, kCheap, [](vf v) { return 1.f / (v * v); });
      if (p == 0.f) return map1(x, y, n, kCheap, [](vf) { return vset(1.f); });
      parallel_range(n, kMath / 4, [&](size_t b, size_t e) {
        if (p == 0.5f)
          for (size_t i = b; i < e; i++) y[i] = __builtin_sqrtf(x[i]);
        else if (p == -0.5f)
          for (size_t i = b; i < e; i++) y[i] = 1.f / __builtin_sqrtf(x[i]);
        else
          for (size_t i = b; i < e; i++) y[i] = std::pow(x[i], p);
      });
      return;
  }
  fail("unary: unknown op " + std::to_string(op));
}

// ---- unary backward: dx = dy * op'(x), y = op(x) ----
static void unary_backward(int op, const float* x, const float* y, const float* dy, float* dx, size_t n, float p) {
  switch (op) {
    case U_NEG: return map3(x, y, dy, dx, n, kCheap, [](vf, vf, vf g) { return -g; });
    case U_EXP: return map3(x, y, dy, dx, n, kCheap, [](vf, vf yy, vf g) { return g * yy; });
    case U_LOG: return map3(x, y, dy, dx, n, kCheap, [](vf xx, vf, vf g) { return g / xx; });
    case U_SQRT: return map3(x, y, dy, dx, n, kCheap, [](vf, vf yy, vf g) { return g / (2.f * yy); });
    case U_TANH: return map3(x, y, dy, dx, n, kCheap, [](vf, vf yy, vf g) { return g * (1.f - yy * yy); });
    case U_SIGMOID: return map3(x, y, dy, dx, n, kCheap, [](vf, vf yy, vf g) { return g * yy * (1.f - yy); });
    case U_RELU: return map3(x, y, dy, dx, n, kCheap, [](vf, vf yy, vf g) { return yy > 0.f ? g : vset(0.f); });
    case U_SILU:
      return map3(x, y, dy, dx, n, kMath, [](vf xx, vf, vf g) {
        vf s = v_sigmoid(xx);
        return g * (s * (1.f + xx * (1.f - s)));
      });
    case U_GELU:
      return map3(x, y, dy, dx, n, kMath, [](vf xx, vf, vf g) {
        vf pdf;
        vf phi = v_phi(xx, &pdf);
        return g * (phi + xx * pdf);
      });
    case U_GELU_TANH:
      // s = sigmoid(2u) = (1 + tanh u)/2: d/dx = s + 2 x s (1 - s) u'
      return map3(x, y, dy, dx, n, kMath, [](vf xx, vf, vf g) {
        vf x2 = xx * xx;
        vf s = v_sigmoid(2.f * kGeluTanhBeta * (xx + kGeluTanhKappa * x2 * xx));
        vf du = kGeluTanhBeta * (1.f + 3.f * kGeluTanhKappa * x2);
        return g * (s + 2.f * xx * s * (1.f - s) * du);
      });
    case U_SCALE: return map3(x, y, dy, dx, n, kCheap, [p](vf, vf, vf g) { return g * p; });
    case U_ADD_SCALAR: return map3(x, y, dy, dx, n, kCheap, [](vf, vf, vf g) { return g; });
    case U_POW:
      // PyTorch: grad * p * x^(p-1), 0 where p == 0
      if (p == 0.f) return map3(x, y, dy, dx, n, kCheap, [](vf, vf, vf) { return vset(0.f); });
      if (p == 1.f) return map3(x, y, dy, dx, n, kCheap, [](vf, vf, vf g) { return g; });
      if (p == 2.f) return map3(x, y, dy, dx, n, kCheap, [](vf xx, vf, vf g) { return g * (2.f * xx); });
      parallel_range(n, kMath / 4, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; i++) dx[i] = dy[i] * (p * std::pow(x[i], p - 1.f));
      });
      return;
  }
  fail("unaryBackward: unknown op " + std::to_string(op));
}

// ---- binary with NumPy broadcasting ----
template <int OP>
LOOM_INLINE vf bop(vf a, vf b) {
  if (OP == B_ADD) return a + b;
  if (OP == B_SUB) return a - b;
  if (OP == B_MUL) return a * b;
  return a / b;
}

// out (n) = a op b, sa/sb in {0, 1}: stride 0 broadcasts one value
template <int OP>
static inline void binary_inner(const float* a, size_t sa, const float* b, size_t sb, float* out, size_t n) {
  size_t i = 0;
  if (sa && sb) {
    for (; i + VL <= n; i += VL) vstore(out + i, bop<OP>(vload(a + i), vload(b + i)));
    if (i < n) vstore_part(out + i, bop<OP>(vload_part(a + i, n - i), vload_part(b + i, n - i, 1.f)), n - i);
  } else if (sa) {
    vf bv = vset(b[0]);
    for (; i + VL <= n; i += VL) vstore(out + i, bop<OP>(vload(a + i), bv));
    if (i < n) vstore_part(out + i, bop<OP>(vload_part(a + i, n - i), bv), n - i);
  } else if (sb) {
    vf av = vset(a[0]);
    for (; i + VL <= n; i += VL) vstore(out + i, bop<OP>(av, vload(b + i)));
    if (i < n) vstore_part(out + i, bop<OP>(av, vload_part(b + i, n - i, 1.f)), n - i);
  } else {
    float v = bop<OP>(vset(a[0]), vset(b[0]))[0];
    for (; i < n; i++) out[i] = v;
  }
}

template <int OP>
static void binary_op(const float* a, const std::vector<size_t>& ashape, const float* b,
                      const std::vector<size_t>& bshape, float* out, const std::vector<size_t>& oshape) {
  // element strides of a and b over out's index space (0 = broadcast), then merge contiguous dims
  size_t rank = oshape.size();
  std::vector<size_t> dims, sa, sb;
  size_t ca = 1, cb = 1;
  std::vector<size_t> sta(rank), stb(rank);
  for (size_t i = rank; i-- > 0;) {
    sta[i] = ashape[i] == 1 ? 0 : ca;
    stb[i] = bshape[i] == 1 ? 0 : cb;
    ca *= ashape[i];
    cb *= bshape[i];
  }
  for (size_t i = 0; i < rank; i++) {
    if (oshape[i] == 1) continue;
    if (!dims.empty() && sa.back() == sta[i] * oshape[i] && sb.back() == stb[i] * oshape[i]) {
      dims.back() *= oshape[i];
      sa.back() = sta[i];
      sb.back() = stb[i];
    } else {
      dims.push_back(oshape[i]);
      sa.push_back(sta[i]);
      sb.push_back(stb[i]);
    }
  }
  size_t total = 1;
  for (size_t d : dims) total *= d;
  if (total == 0) return;
  if (dims.empty()) {
    binary_inner<OP>(a, 1, b, 1, out, 1);
    return;
  }
  size_t nd = dims.size(), inner = dims[nd - 1], outer = total / inner;
  size_t ia = sa[nd - 1], ib = sb[nd - 1];
  if (outer == 1) {
    parallel_range(inner, kCheap, [&](size_t s, size_t e) {
      binary_inner<OP>(a + s * ia, ia, b + s * ib, ib, out + s, e - s);
    });
    return;
  }
  int nt = threads_for(static_cast<double>(total), static_cast<double>(kCheap));
#pragma omp parallel num_threads(nt)
  {
    size_t r0, r1;
    thread_range(outer, &r0, &r1);
    if (r0 < r1) {
      // odometer over the outer dims, started at row r0
      std::vector<size_t> idx(nd - 1);
      size_t rem = r0, oa = 0, ob = 0;
      for (size_t d = nd - 1; d-- > 0;) {
        idx[d] = rem % dims[d];
        rem /= dims[d];
        oa += idx[d] * sa[d];
        ob += idx[d] * sb[d];
      }
      for (size_t r = r0; r < r1; r++) {
        binary_inner<OP>(a + oa, ia, b + ob, ib, out + r * inner, inner);
        for (size_t d = nd - 1; d-- > 0;) {
          oa += sa[d];
          ob += sb[d];
          if (++idx[d] < dims[d]) break;
          oa -= sa[d] * dims[d];
          ob -= sb[d] * dims[d];
          idx[d] = 0;
        }
      }
    }
  }
}

static void binary(int op, const float* a, const std::vector<size_t>& ashape, const float* b,
                   const std::vector<size_t>& bshape, float* out, const std::vector<size_t>& oshape) {
  switch (op) {
    case B_ADD: return binary_op<B_ADD>(a, ashape, b, bshape, out, oshape);
    case B_SUB: return binary_op<B_SUB>(a, ashape, b, bshape, out, oshape);
    case B_MUL: return binary_op<B_MUL>(a, ashape, b, bshape, out, oshape);
    case B_DIV: return binary_op<B_DIV>(a, ashape, b, bshape, out, oshape);
  }
  fail("binary: unknown op " + std::to_string(op));
}

// ---- dropout: keep bits over (seed, i), vectorized ----
// Writes 0 / scale per element of [idx0, idx0 + VL) into a float vector.
LOOM_INLINE vf dropout_factor(uint32_t seed, uint64_t idx0, uint32_t thr, float scale) {
  uint32_t lo = static_cast<uint32_t>(idx0);
  vu bits;
  if (lo <= 0xffffffffu - VL) {
    uint32_t hmix = mix32(seed + static_cast<uint32_t>(idx0 >> 32) * 0x9e3779b9u);
    vu h = ((vu)viota() + lo) ^ hmix;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    bits = h >> 8;
  } else {
    for (int l = 0; l < VL; l++) bits[l] = dropout_bits(seed, idx0 + l);
  }
  return (vi)(bits >= thr) ? vset(scale) : vset(0.f);
}

static void dropout(const float* x, float* y, size_t n, double p, uint32_t seed) {
  uint32_t thr = dropout_threshold(p);
  float scale = p < 1 ? static_cast<float>(1.0 / (1.0 - p)) : 0.f;
  if (thr == 0) scale = 1.f;
  parallel_range(n, kMath, [&](size_t b, size_t e) {
    size_t i = b;
    for (; i + VL <= e; i += VL) vstore(y + i, vload(x + i) * dropout_factor(seed, i, thr, scale));
    if (i < e) vstore_part(y + i, vload_part(x + i, e - i) * dropout_factor(seed, i, thr, scale), e - i);
  });
}
