// Fused scaled-dot-product attention, forward and backward (ISA-generic, included by native/isa_*.cc).
// Flash-attention style: query blocks x key blocks with an online softmax, memory O(T) (per-thread block
// scratch, never B*H*T*S). Forward runs in parallel over (batch, q-head, query block), backward over
// (batch, kv-head), which owns dK/dV of that kv head and dQ of its query heads (GQA), so no races.
// Dropout (b,h,t,s) keeps iff dropout_uniform(seed, ((b*Hq+h)*T+t)*S+s) >= p, scaled by 1/(1-p); the
// softmax normaliser (and lse) is taken before dropout, as in PyTorch.

constexpr size_t ATT_BQ = 64, ATT_BK = 64;  // both multiples of VL

#if LOOM_VL == 16
constexpr int MM_MR = 6, MM_NV = 4;
#elif LOOM_VL == 8
constexpr int MM_MR = 6, MM_NV = 2;
#else
constexpr int MM_MR = 4, MM_NV = 2;
#endif

// C (MR, NV*VL) (+)= A (MR, K) B (K, NV*VL), all row-major with leading dims; TA: A is stored (K, MR)
template <int MR, int NV, bool TA>
LOOM_INLINE void mm_tile(size_t K, const float* LOOM_RESTRICT A, size_t lda, const float* LOOM_RESTRICT B, size_t ldb,
                         float* C, size_t ldc, bool accumulate) {
  vf c[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) c[r][v] = accumulate ? vload(C + r * ldc + v * VL) : vset(0.f);
  for (size_t p = 0; p < K; p++) {
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = vload(B + p * ldb + v * VL);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      vf a = vset(TA ? A[p * lda + r] : A[r * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) c[r][v] = vfma(a, b[v], c[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) vstore(C + r * ldc + v * VL, c[r][v]);
}

template <int NV, bool TA>
static inline void mm_rows(size_t M, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                           size_t ldc, bool acc) {
  auto at = [&](size_t i) { return TA ? A + i : A + i * lda; };
  size_t i = 0;
  for (; i + MM_MR <= M; i += MM_MR) mm_tile<MM_MR, NV, TA>(K, at(i), lda, B, ldb, C + i * ldc, ldc, acc);
  for (; i + 2 <= M; i += 2) mm_tile<2, NV, TA>(K, at(i), lda, B, ldb, C + i * ldc, ldc, acc);
  if (i < M) mm_tile<1, NV, TA>(K, at(i), lda, B, ldb, C + i * ldc, ldc, acc);
}

// C (M, N) (+)= op(A) (M, K) B (K, N), op(A) = A (M, K) or, with TA, A^T for A stored (K, M); N a multiple of VL
template <bool TA = false>
static void mm(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
               size_t ldc, bool acc) {
  size_t j = 0;
  for (; j + MM_NV * VL <= N; j += MM_NV * VL) mm_rows<MM_NV, TA>(M, K, A, lda, B + j, ldb, C + j, ldc, acc);
  for (; j < N; j += VL) mm_rows<1, TA>(M, K, A, lda, B + j, ldb, C + j, ldc, acc);
}

// dst (cols, rows_pad) = src (rows, cols)^T with src leading dim lds; columns rows..rows_pad zero.
// 16 x 16 tiles keep both the strided reads and the strided writes inside L1.
static inline void transpose_pad(const float* src, size_t rows, size_t cols, size_t lds, float* dst, size_t ldd,
                                 size_t rows_pad) {
  constexpr size_t TB = 16;
  for (size_t r0 = 0; r0 < rows; r0 += TB) {
    size_t r1 = r0 + TB < rows ? r0 + TB : rows;
    for (size_t c0 = 0; c0 < cols; c0 += TB) {
      size_t c1 = c0 + TB < cols ? c0 + TB : cols;
      for (size_t r = r0; r < r1; r++)
        for (size_t c = c0; c < c1; c++) dst[c * ldd + r] = src[r * lds + c];
    }
  }
  for (size_t c = 0; c < cols; c++)
    for (size_t r = rows; r < rows_pad; r++) dst[c * ldd + r] = 0.f;
}

// dst (rows, ldd) = src (rows, cols) with src leading dim lds, zero-padded to ldd columns
static inline void copy_pad(const float* src, size_t rows, size_t cols, size_t lds, float* dst, size_t ldd) {
  for (size_t r = 0; r < rows; r++) {
    for (size_t c = 0; c < cols; c++) dst[r * ldd + c] = src[r * lds + c];
    for (size_t c = cols; c < ldd; c++) dst[r * ldd + c] = 0.f;
  }
}

// Turns score row x (raw q.k, n_pad columns) into scaled, masked scores; returns the row max.
// Column j is visible iff j < ns, s0+j <= limit and (no mask or mask[s0+j] != 0).
LOOM_INLINE float mask_scores(float* x, size_t ns, size_t n_pad, size_t s0, long limit, const int32_t* mask,
                              float scale) {
  vf mx = vset(-__builtin_inff());
  const vf ninf = vset(-__builtin_inff());
  for (size_t j = 0; j < n_pad; j += VL) {
    vi col = viota() + static_cast<int32_t>(j);
    vi ok = (col < static_cast<int32_t>(ns)) & (col + static_cast<int32_t>(s0) <= static_cast<int32_t>(limit));
    if (mask) {
      vi mv = vi{} + 0;
      for (int l = 0; l < VL; l++) mv[l] = j + l < ns ? mask[s0 + j + l] : 0;
      ok &= mv != 0;
    }
    vf s = ok ? vload(x + j) * scale : ninf;
    vstore(x + j, s);
    mx = vmax(mx, s);
  }
  return hmax(mx);
}

// q (B, Hq, T, D), k, v (B, Hkv, S, D), mask (B, S) or null -> out (B, Hq, T, D), lse (B, Hq, T).
// q/k/v/out rows go through a.lq/lk/lv/lo; a row pointer with the token stride as leading dimension is
// handed to mm() as it is, so strided layouts cost nothing unless D needs padding (then the block is
// copied into the padded scratch, as the contiguous layout already does). lse is always contiguous.
static void attention(const AttnCall& a, float* out, float* lse) {
  const size_t B = a.batch, Hq = a.heads_q, Hk = a.heads_kv, T = a.tq, S = a.tk, D = a.head_dim;
  const size_t G = Hq / Hk, Dp = round_up(D, VL), Sp = round_up(S, VL), nqb = (T + ATT_BQ - 1) / ATT_BQ;
  const long off = static_cast<long>(S) - static_cast<long>(T);
  const uint32_t thr = dropout_threshold(a.dropout_p);
  const float dscale = thr ? static_cast<float>(1.0 / (1.0 - a.dropout_p)) : 1.f;
  const size_t tasks = B * Hq * nqb;
  if (tasks == 0) return;
  int nt = threads_for(4.0 * B * Hq * T * S * (D + 8), 1 << 20);
  if (nt > static_cast<int>(tasks)) nt = static_cast<int>(tasks);
  float* kt_all = scratch(5, B * Hk * D * Sp);  // K^T of every kv head (B*Hkv, D, Sp), shared by the threads
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(static)
    for (size_t bh = 0; bh < B * Hk; bh++)
      transpose_pad(a.k + a.lk.at(bh / Hk, bh % Hk, 0), S, D, a.lk.token, kt_all + bh * D * Sp, Sp, Sp);
    float* vp = scratch(1, ATT_BK * Dp);       // V block padded (BK, Dp)
    float* sc = scratch(2, ATT_BQ * ATT_BK);   // scores / probabilities (BQ, BK)
    float* acc = scratch(3, ATT_BQ * Dp);      // output accumulator (BQ, Dp)
    float* mrow = scratch(4, 2 * ATT_BQ);      // running max, then running sum
    float* lrow = mrow + ATT_BQ;
#pragma omp for schedule(dynamic, 1)
    for (size_t task = 0; task < tasks; task++) {
      size_t qb = task % nqb, bh = task / nqb, h = bh % Hq, b = bh / Hq, hk = h / G;
      size_t t0 = qb * ATT_BQ, nq = T - t0 < ATT_BQ ? T - t0 : ATT_BQ;
      const size_t ldq = a.lq.token, ldv = a.lv.token, ldo = a.lo.token;
      const float* q = a.q + a.lq.at(b, h, t0);             // (nq, D), leading dim ldq
      const float* kt = kt_all + (b * Hk + hk) * D * Sp;    // (D, Sp)
      const float* v = a.v + a.lv.at(b, hk, 0);             // (S, D), leading dim ldv
      const int32_t* mask = a.mask ? a.mask + b * S : nullptr;
      long last = a.causal ? static_cast<long>(t0 + nq - 1) + off : static_cast<long>(S) - 1;
      size_t s_end = last < 0 ? 0 : (static_cast<size_t>(last) + 1 < S ? static_cast<size_t>(last) + 1 : S);
      for (size_t i = 0; i < nq; i++) {
        mrow[i] = -__builtin_inff();
        lrow[i] = 0.f;
      }
      for (size_t i = 0; i < nq * Dp; i++) acc[i] = 0.f;
      for (size_t s0 = 0; s0 < s_end; s0 += ATT_BK) {
        size_t ns = s_end - s0 < ATT_BK ? s_end - s0 : ATT_BK, nsp = round_up(ns, VL);
        mm(nq, nsp, D, q, ldq, kt + s0, Sp, sc, ATT_BK, false);  // sc (nq, nsp) = q k^T
        for (size_t i = 0; i < nq; i++) {
          size_t t = t0 + i;
          float* row = sc + i * ATT_BK;
          long limit = a.causal ? static_cast<long>(t) + off : static_cast<long>(S);
          float mx = mask_scores(row, ns, nsp, s0, limit, mask, a.scale);
          float mnew = mx > mrow[i] ? mx : mrow[i];
          if (mnew == -__builtin_inff()) {  // nothing visible yet
            for (size_t j = 0; j < nsp; j++) row[j] = 0.f;
            continue;
          }
          float corr = v_exp(vset(mrow[i] - mnew))[0];
          vf mv = vset(mnew), sum = vset(0.f);
          uint64_t base = ((static_cast<uint64_t>(b) * Hq + h) * T + t) * S + s0;
          for (size_t j = 0; j < nsp; j += VL) {
            vf p = v_exp(vload(row + j) - mv);
            sum += p;
            if (thr) p *= dropout_factor(a.seed, base + j, thr, dscale);
            vstore(row + j, p);
          }
          lrow[i] = lrow[i] * corr + hsum(sum);
          mrow[i] = mnew;
          if (corr != 1.f) {
            float* ar = acc + i * Dp;
            for (size_t d = 0; d < Dp; d += VL) vstore(ar + d, vload(ar + d) * corr);
          }
        }
        const float* vb = v + s0 * ldv;
        size_t ldvb = ldv;
        if (Dp != D) {
          copy_pad(vb, ns, D, ldv, vp, Dp);
          vb = vp;
          ldvb = Dp;
        }
        mm(nq, Dp, ns, sc, ATT_BK, vb, ldvb, acc, Dp, true);  // acc (nq, Dp) += p v
      }
      float* o = out + a.lo.at(b, h, t0);
      float* ls = lse + (b * Hq + h) * T + t0;
      for (size_t i = 0; i < nq; i++) {
        float l = lrow[i];
        float inv = l > 0.f ? 1.f / l : 0.f;
        for (size_t d = 0; d < D; d++) o[i * ldo + d] = acc[i * Dp + d] * inv;
        ls[i] = l > 0.f ? mrow[i] + static_cast<float>(std::log(static_cast<double>(l))) : -__builtin_inff();
      }
    }
  }
}

// q, out, dout (B, Hq, T, D), k, v (B, Hkv, S, D), lse (B, Hq, T) -> dq (B, Hq, T, D), dk, dv (B, Hkv, S, D).
// out/dout go through a.lo, q/dq through a.lq, k/dk through a.lk, v/dv through a.lv. A task writes only
// the dq rows of its own query heads and the dk/dv rows of its kv head, so dq/dk/dv may be three disjoint
// regions of one packed storage (the gradient of a packed QKV).
static void attention_backward(const AttnCall& a, const float* out, const float* lse, const float* dout, float* dq,
                               float* dk, float* dv) {
  const size_t B = a.batch, Hq = a.heads_q, Hk = a.heads_kv, T = a.tq, S = a.tk, D = a.head_dim;
  const size_t G = Hq / Hk, Dp = round_up(D, VL), Sp = round_up(S, VL), nqb = (T + ATT_BQ - 1) / ATT_BQ;
  const long off = static_cast<long>(S) - static_cast<long>(T);
  const uint32_t thr = dropout_threshold(a.dropout_p);
  const float dscale = thr ? static_cast<float>(1.0 / (1.0 - a.dropout_p)) : 1.f;
  const size_t tasks = B * Hk;
  if (tasks == 0) return;
  int nt = threads_for(10.0 * B * Hq * T * S * (D + 8), 1 << 20);
  if (nt > static_cast<int>(tasks)) nt = static_cast<int>(tasks);
#pragma omp parallel num_threads(nt)
  {
    float* kt = scratch(0, D * Sp);              // K^T (D, Sp)
    float* vt = scratch(1, D * Sp);              // V^T (D, Sp)
    float* kv = scratch(2, 3 * S * Dp);          // K padded, dK, dV accumulators (S, Dp) each
    float* blk = scratch(3, 2 * ATT_BQ * ATT_BK + 3 * ATT_BQ * Dp + 2 * ATT_BQ);
    float* kp = kv;
    float* dka = kv + S * Dp;
    float* dva = kv + 2 * S * Dp;
    float* pb = blk;                          // P (dropped) (BQ, BK)
    float* dsb = pb + ATT_BQ * ATT_BK;        // dP, then dS * scale (BQ, BK)
    float* qp = dsb + ATT_BQ * ATT_BK;        // Q block padded (BQ, Dp)
    float* dop = qp + ATT_BQ * Dp;            // dO block padded (BQ, Dp)
    float* dqa = dop + ATT_BQ * Dp;           // dQ accumulator (BQ, Dp)
    float* drow = dqa + ATT_BQ * Dp;          // rowsum(dO * O)
    float* lrow = drow + ATT_BQ;
#pragma omp for schedule(dynamic, 1)
    for (size_t task = 0; task < tasks; task++) {
      size_t b = task / Hk, hk = task % Hk;
      const size_t ldk = a.lk.token, ldv = a.lv.token, ldq = a.lq.token, ldo = a.lo.token;
      const float* k = a.k + a.lk.at(b, hk, 0);
      const float* v = a.v + a.lv.at(b, hk, 0);
      const int32_t* mask = a.mask ? a.mask + b * S : nullptr;
      transpose_pad(k, S, D, ldk, kt, Sp, Sp);
      transpose_pad(v, S, D, ldv, vt, Sp, Sp);
      const float* kb = k;
      size_t ldkb = ldk;
      if (Dp != D) {
        copy_pad(k, S, D, ldk, kp, Dp);
        kb = kp;
        ldkb = Dp;
      }
      for (size_t i = 0; i < 2 * S * Dp; i++) dka[i] = 0.f;
      for (size_t g = 0; g < G; g++) {
        size_t h = hk * G + g;
        for (size_t qb = 0; qb < nqb; qb++) {
          size_t t0 = qb * ATT_BQ, nq = T - t0 < ATT_BQ ? T - t0 : ATT_BQ;
          size_t row0 = (b * Hq + h) * T + t0;  // of lse and the dropout index (always (B, Hq, T))
          const float* qs = a.q + a.lq.at(b, h, t0);
          const float* dos = dout + a.lo.at(b, h, t0);
          const float* os = out + a.lo.at(b, h, t0);
          const float* qb_ = qs;
          const float* dob = dos;
          size_t ldqb = ldq, ldob = ldo;
          if (Dp != D) {
            copy_pad(qs, nq, D, ldq, qp, Dp);
            copy_pad(dos, nq, D, ldo, dop, Dp);
            qb_ = qp;
            dob = dop;
            ldqb = ldob = Dp;
          }
          for (size_t i = 0; i < nq; i++) {
            float s = 0.f;
            for (size_t d = 0; d < D; d++) s += dos[i * ldo + d] * os[i * ldo + d];
            drow[i] = s;
            lrow[i] = lse[row0 + i];
          }
          for (size_t i = 0; i < nq * Dp; i++) dqa[i] = 0.f;
          long last = a.causal ? static_cast<long>(t0 + nq - 1) + off : static_cast<long>(S) - 1;
          size_t s_end = last < 0 ? 0 : (static_cast<size_t>(last) + 1 < S ? static_cast<size_t>(last) + 1 : S);
          for (size_t s0 = 0; s0 < s_end; s0 += ATT_BK) {
            size_t ns = s_end - s0 < ATT_BK ? s_end - s0 : ATT_BK, nsp = round_up(ns, VL);
            mm(nq, nsp, D, qb_, ldqb, kt + s0, Sp, pb, ATT_BK, false);    // S = q k^T
            mm(nq, nsp, D, dob, ldob, vt + s0, Sp, dsb, ATT_BK, false);   // dP = dO v^T
            for (size_t i = 0; i < nq; i++) {
              size_t t = t0 + i;
              float* prow = pb + i * ATT_BK;
              float* drw = dsb + i * ATT_BK;
              long limit = a.causal ? static_cast<long>(t) + off : static_cast<long>(S);
              mask_scores(prow, ns, nsp, s0, limit, mask, a.scale);
              float l = lrow[i];
              if (l == -__builtin_inff()) {
                for (size_t j = 0; j < nsp; j++) prow[j] = drw[j] = 0.f;
                continue;
              }
              vf lv = vset(l), dv_ = vset(drow[i]);
              uint64_t base = (static_cast<uint64_t>(row0) + i) * S + s0;
              for (size_t j = 0; j < nsp; j += VL) {
                vf p = v_exp(vload(prow + j) - lv);
                vf dp = vload(drw + j);
                vf pd = p;
                if (thr) {
                  vf z = dropout_factor(a.seed, base + j, thr, dscale);
                  pd = p * z;
                  dp = dp * z;
                }
                vstore(prow + j, pd);
                vstore(drw + j, p * (dp - dv_) * a.scale);
              }
            }
            mm<true>(ns, Dp, nq, pb, ATT_BK, dob, ldob, dva + s0 * Dp, Dp, true);   // dV += P^T dO
            mm<true>(ns, Dp, nq, dsb, ATT_BK, qb_, ldqb, dka + s0 * Dp, Dp, true);  // dK += dS^T q
            mm(nq, Dp, ns, dsb, ATT_BK, kb + s0 * ldkb, ldkb, dqa, Dp, true);   // dQ += dS k
          }
          float* dqo = dq + a.lq.at(b, h, t0);
          for (size_t i = 0; i < nq; i++)
            for (size_t d = 0; d < D; d++) dqo[i * ldq + d] = dqa[i * Dp + d];
        }
      }
      float* dko = dk + a.lk.at(b, hk, 0);
      float* dvo = dv + a.lv.at(b, hk, 0);
      for (size_t s = 0; s < S; s++)
        for (size_t d = 0; d < D; d++) {
          dko[s * ldk + d] = dka[s * Dp + d];
          dvo[s * ldv + d] = dva[s * Dp + d];
        }
    }
  }
}
