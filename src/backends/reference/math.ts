// Scalar special functions for the reference backend, in double precision: erf/erfc (for exact GELU),
// a numerically stable logistic sigmoid, and the GELU variants with their derivatives.

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2 / sqrt(pi)
const INV_SQRT_PI = 0.5641895835477563; // 1 / sqrt(pi)
const INV_SQRT_2 = 0.7071067811865476; // 1 / sqrt(2)
const INV_SQRT_2PI = 0.3989422804014327; // 1 / sqrt(2 pi)
const SQRT_2_OVER_PI = 0.7978845608028654; // sqrt(2 / pi)
const GELU_TANH_C = 0.044715;

/**
 * erf(x) for |x| < 3 from the series erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!,
 * whose terms all have the sign of x (no cancellation): accurate to a few ulps of a double.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * erfc(x) for x >= 3 from the continued fraction
 * erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up.
 */
function erfcFraction(x: number): number {
  let t = x;
  for (let n = 80; n >= 1; n--) t = x + (n * 0.5) / t;
  return (INV_SQRT_PI * Math.exp(-x * x)) / t;
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a < 3) return erfSeries(x);
  const r = 1 - erfcFraction(a);
  return x < 0 ? -r : r;
}

/** erfc(x) = 1 - erf(x), keeping relative accuracy in the tail x >> 0. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 3) return erfcFraction(x);
  if (x <= -3) return 2 - erfcFraction(-x);
  return 1 - erfSeries(x);
}

/** 1 / (1 + e^{-x}) without overflow for either sign. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Exact GELU: x * Phi(x) = 0.5 x erfc(-x / sqrt 2). */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x * INV_SQRT_2);
}

/** d/dx of exact GELU: Phi(x) + x phi(x). */
export function geluGrad(x: number): number {
  return 0.5 * erfc(-x * INV_SQRT_2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/**
 * tanh-approximate GELU: 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3), using the identity
 * 1 + tanh(u) = 2 sigmoid(2u), which avoids cancellation for large negative x.
 */
export function geluTanh(x: number): number {
  const u = SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x);
  return x * sigmoid(2 * u);
}

/** d/dx of tanh-approximate GELU: 0.5(1 + tanh u) + 0.5 x (1 - tanh^2 u) u'. */
export function geluTanhGrad(x: number): number {
  const u = SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x);
  const s = sigmoid(2 * u); // (1 + tanh u) / 2
  const du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_C * x * x);
  // 1 - tanh^2 u = 4 s (1 - s)
  return s + 2 * x * s * (1 - s) * du;
}
