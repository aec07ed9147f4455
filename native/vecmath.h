// ISA-generic vector type and math (exp, log, tanh, erfc, sigmoid) on GCC vector extensions.
// Included inside namespace loom::<isa> by native/isa_*.cc after `#pragma GCC target`, with LOOM_VL lanes.
// Accuracy (f32): exp/log ~1 ulp, tanh ~2 ulp, erfc ~1e-6 relative; NaN and +-Inf propagate like libm.
// No FMA in here, so these give the same bits at every ISA level.

constexpr int VL = LOOM_VL;
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));

#define LOOM_INLINE static inline __attribute__((always_inline))

LOOM_INLINE vf vload(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
LOOM_INLINE void vstore(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
LOOM_INLINE vf vset(float x) { return vf{} + x; }
/** a * b + c, fused where the ISA has FMA (the build has -ffp-contract=off: nothing is fused implicitly). */
LOOM_INLINE vf vfma(vf a, vf b, vf c) {
#if LOOM_VL == 16
  return _mm512_fmadd_ps(a, b, c);
#elif LOOM_VL == 8
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}
LOOM_INLINE vf vsel(vi m, vf a, vf b) { return m ? a : b; }
LOOM_INLINE vf vmax(vf a, vf b) { return a > b ? a : b; }
LOOM_INLINE vf vmin(vf a, vf b) { return a < b ? a : b; }
LOOM_INLINE vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
LOOM_INLINE vi viota() {
  vi r;
  for (int i = 0; i < VL; i++) r[i] = i;
  return r;
}
/**
 * Transposes the VL x VL block rows[0..VL) in registers (rows[i][l] becomes rows[l][i]). A transpose swaps
 * the row index with the lane index; stage h swaps one of their bits (h) for every row pair i, i + h.
 */
LOOM_INLINE void vtranspose(vf* rows) {
#pragma GCC unroll 8
  for (int h = 1; h < VL; h <<= 1) {
    vi lo, hi;
    for (int l = 0; l < VL; l++) {
      lo[l] = (l & h) ? VL + l - h : l;
      hi[l] = (l & h) ? VL + l : l + h;
    }
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++)
      if (!(i & h)) {
        vf a = rows[i], b = rows[i + h];
        rows[i] = __builtin_shuffle(a, b, lo);
        rows[i + h] = __builtin_shuffle(a, b, hi);
      }
  }
}
/** Loads n < VL floats, zero-filling the rest. */
LOOM_INLINE vf vload_part(const float* p, size_t n, float fill = 0.f) {
  vf v = vset(fill);
  for (size_t i = 0; i < n; i++) v[i] = p[i];
  return v;
}
LOOM_INLINE void vstore_part(float* p, vf v, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = v[i];
}
// Horizontal sum / max by halving (a tree, not VL serial steps).
typedef float vf4 __attribute__((vector_size(16)));
LOOM_INLINE vf4 fold4_sum(vf v) {
#if LOOM_VL == 4
  return v;
#else
  vf4 r;
  __builtin_memcpy(&r, &v, 16);
  for (int i = 1; i < VL / 4; i++) {
    vf4 t;
    __builtin_memcpy(&t, reinterpret_cast<const char*>(&v) + 16 * i, 16);
    r += t;
  }
  return r;
#endif
}
LOOM_INLINE vf4 fold4_max(vf v) {
#if LOOM_VL == 4
  return v;
#else
  vf4 r;
  __builtin_memcpy(&r, &v, 16);
  for (int i = 1; i < VL / 4; i++) {
    vf4 t;
    __builtin_memcpy(&t, reinterpret_cast<const char*>(&v) + 16 * i, 16);
    r = t > r ? t : r;
  }
  return r;
#endif
}
LOOM_INLINE float hsum(vf v) {
  vf4 r = fold4_sum(v);
  return (r[0] + r[2]) + (r[1] + r[3]);
}
LOOM_INLINE float hmax(vf v) {
  vf4 r = fold4_max(v);
  float a = r[0] > r[2] ? r[0] : r[2], b = r[1] > r[3] ? r[1] : r[3];
  return a > b ? a : b;
}
/** Rounds to nearest integer (|x| < 2^22) without SSE4.1. */
LOOM_INLINE vf vround(vf x) {
  const vf magic = vset(12582912.f);
  return (x + magic) - magic;
}

/**
 * exp(a + b) where the reduction a - n ln2_hi is exact (a holds few enough bits, e.g. a square of a
 * 12-bit number): a large a keeps full relative accuracy while b carries the rest. v_exp(x) is
 * v_exp_parts(x, 0).
 */
LOOM_INLINE vf v_exp_parts(vf a, vf b) {
  const vf hi = vset(88.72283935546875f), lo = vset(-103.972076416015625f);
  vf x = a + b;
  vf xc = vmin(vmax(x, lo), hi);
  vf n = vround(xc * 1.44269504088896341f);
  vf r = (a - n * 0.693359375f) + b;
  r = r - n * -2.12194440e-4f;
  vf p = vset(1.9875691500E-4f);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  vf y = p * (r * r) + r + 1.f;
  // 2^n as two normal factors so that results down to the smallest subnormal are right
  vi ni = __builtin_convertvector(n, vi);
  vi n1 = ni >> 1, n2 = ni - n1;
  y = y * (vf)((n1 + 127) << 23);
  y = y * (vf)((n2 + 127) << 23);
  y = x > hi ? vset(__builtin_inff()) : y;
  y = x < lo ? vset(0.f) : y;
  return x != x ? x : y;
}

LOOM_INLINE vf v_exp(vf x) { return v_exp_parts(x, vset(0.f)); }

LOOM_INLINE vf v_log(vf x) {
  // subnormals: scale into the normal range first
  vi sub = x < 1.17549435e-38f;
  vf xs = sub ? x * 8388608.f : x;
  vi xi = (vi)xs;
  vf e = __builtin_convertvector(((xi >> 23) & 0xff) - 126, vf);
  e = sub ? e - 23.f : e;
  vf m = (vf)((xi & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  vi small = m < 0.707106781186547524f;
  e = small ? e - 1.f : e;
  m = small ? m + m - 1.f : m - 1.f;
  vf z = m * m;
  vf p = vset(7.0376836292E-2f);
  p = p * m + -1.1514610310E-1f;
  p = p * m + 1.1676998740E-1f;
  p = p * m + -1.2420140846E-1f;
  p = p * m + 1.4249322787E-1f;
  p = p * m + -1.6668057665E-1f;
  p = p * m + 2.0000714765E-1f;
  p = p * m + -2.4999993993E-1f;
  p = p * m + 3.3333331174E-1f;
  vf y = p * m * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  vf r = m + y;
  r = r + e * 0.693359375f;
  r = x == __builtin_inff() ? x : r;
  r = x == 0.f ? vset(-__builtin_inff()) : r;
  r = x < 0.f ? vset(__builtin_nanf("")) : r;
  return x != x ? x : r;
}

LOOM_INLINE vf v_tanh(vf x) {
  vf ax = vabs(x);
  vf z = x * x;
  vf p = vset(-5.70498872745E-3f);
  p = p * z + 2.06390887954E-2f;
  p = p * z + -5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z + -3.33332819422E-1f;
  vf small = p * z * x + x;
  vf big = 1.f - 2.f / (v_exp(ax + ax) + 1.f);
  big = (vf)(((vi)big) | ((vi)x & (int32_t)0x80000000));
  return ax < 0.625f ? small : big;
}

LOOM_INLINE vf v_sigmoid(vf x) { return 1.f / (1.f + v_exp(-x)); }

/**
 * Phi(x) = 0.5 erfc(-x / sqrt 2), the standard normal CDF, to ~5e-7 relative everywhere (the tail too),
 * and, when pdf is given, the density exp(-x^2/2) / sqrt(2 pi) to ~2 ulp:
 * erfc(|u|) = t exp(-u^2 + P(t)), t = 1/(1 + |u|/2) (Numerical Recipes' erfcc, 1.2e-7 relative), and
 * Phi = 0.5 erfc(|u|) for u < 0, 1 - 0.5 erfc(u) for u >= 0 (no cancellation: Phi >= 0.5 there).
 * u^2 = x^2/2 is split exactly (|x| = hi + lo, hi with 12 mantissa bits, so -hi^2/2 is exact) and goes
 * into one v_exp_parts as (-hi^2/2, P(t) - hi lo - lo^2/2): the tail keeps its relative accuracy.
 */
LOOM_INLINE vf v_phi(vf x, vf* pdf = nullptr) {
  vf u = x * 0.70710678118654752f;
  vf au = vabs(u);
  vf t = 1.f / (1.f + 0.5f * au);
  vf q = vset(0.17087277f);
  q = q * t + -0.82215223f;
  q = q * t + 1.48851587f;
  q = q * t + -1.13520398f;
  q = q * t + 0.27886807f;
  q = q * t + -0.18628806f;
  q = q * t + 0.09678418f;
  q = q * t + 0.37409196f;
  q = q * t + 1.00002368f;
  q = q * t + -1.26551223f;
  vf ax = vmin(vabs(x), vset(30.f));  // erfc(30/sqrt 2) underflows anyway; keeps Inf out of hi - lo
  vf hi = (vf)((vi)ax & (int32_t)0xfffff000);
  vf lo = ax - hi;
  vf e_hi = -0.5f * (hi * hi), e_lo = -(hi * lo + 0.5f * (lo * lo));
  if (pdf) {
    vf d = v_exp_parts(e_hi, e_lo) * 0.3989422804014327f;
    *pdf = x != x ? x : d;  // |x| > 30 (ax clamped) underflows to 0 like the true density
  }
  vf erfc_abs = t * v_exp_parts(e_hi, q + e_lo);
  vf r = u < 0.f ? 0.5f * erfc_abs : 1.f - 0.5f * erfc_abs;
  return x != x ? x : r;
}
