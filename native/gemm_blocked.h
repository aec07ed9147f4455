// The BLIS loop nest shared by the fp32 GEMM (gemm_kernel.h) and the bf16 one (gemm_bf16.cc), included
// inside each one's namespace (no include guard on purpose): B packed in KC x NR panels, A in MC x KC blocks
// of MR-row panels, a register-blocked micro-kernel; each thread owns a fixed cell of rows (and, for
// products with few rows, columns) of C, and the threads pack each B block together.
//
// P, the panel format, provides: Elem (the packed element type); MR, NR, KC, MC, NC; span(kc), the Elems
// of one packed k-row (kc for fp32, kc rounded up to whole pairs for bf16); the scratch slots SLOT_A and
// SLOT_B; pack_a / pack_b_panel (op(A) / op(B) blocks into panels) and micro (one MR x NR tile of C).

// The edge of C (mr x nr, smaller than a tile) from a full accumulator tile `acc` (row stride lda):
// C = alpha acc + [first: beta C + bias | else: C], as the micro-kernels do for whole tiles.
static inline void store_edge_tile(const float* acc, size_t lda, float* c, size_t ldc, size_t mr, size_t nr, float alpha,
                                   float beta, bool first, const float* bias) {
  for (size_t r = 0; r < mr; r++)
    for (size_t j = 0; j < nr; j++) {
      float res = acc[r * lda + j] * alpha;
      float* cp = c + r * ldc + j;
      if (!first)
        res += *cp;
      else {
        if (beta != 0.f) res += beta * *cp;
        if (bias) res += bias[j];
      }
      *cp = res;
    }
}

template <class P>
static void blocked_gemm_one(const GemmCall& g, const float* a, const float* b, float* c, int nt) {
  using E = typename P::Elem;
  constexpr size_t MR = P::MR, NR = P::NR, KC = P::KC, MC = P::MC, NC = P::NC;
  const size_t M = g.m, N = g.n, K = g.k;
  // A static grid of tm row groups x tn column groups, each thread one cell. Rows are split at MR-panel
  // granularity, so the groups differ by at most one panel: dealing MC blocks out dynamically left one
  // thread with a whole extra block (up to 25% idle on 2 threads for M = 384 or 1024). Columns are split
  // only when there are too few rows for every thread to get two panels.
  const size_t panels = (M + MR - 1) / MR;
  const size_t nc_max = N < NC ? N : NC;
  // scratch() counts floats; a panel holds span(KC) Elems per row of k.
  auto floats = [](size_t elems) { return (elems * sizeof(E) + sizeof(float) - 1) / sizeof(float); };
  E* bp = reinterpret_cast<E*>(scratch(P::SLOT_B, floats(P::span(KC) * round_up(nc_max, NR))));
#pragma omp parallel num_threads(nt)
  {
    // from the team OpenMP gave (fewer than nt inside another parallel region)
    const size_t team = static_cast<size_t>(team_size());
    size_t tm = team;
    while (tm > 1 && panels < 2 * tm) tm--;
    const size_t tn = team / tm;
    const size_t id = static_cast<size_t>(thread_id());
    const bool active = id < tm * tn;
    const size_t im = id % tm, in = id / tm;
    const size_t r0 = im * panels / tm * MR, r1 = std::min(M, (im + 1) * panels / tm * MR);
    // even MC blocks within the thread's rows
    const size_t rows = r1 > r0 ? r1 - r0 : 0, n_blocks = (rows + MC - 1) / MC;
    const size_t mc = n_blocks ? round_up((rows + n_blocks - 1) / n_blocks, MR) : MR;
    E* ap = reinterpret_cast<E*>(scratch(P::SLOT_A, floats(P::span(KC) * round_up(mc, MR))));
    for (size_t jc = 0; jc < N; jc += NC) {
      size_t nc = N - jc < NC ? N - jc : NC;
      size_t n_jr = (nc + NR - 1) / NR;
      size_t jr0 = in * n_jr / tn, jr1 = (in + 1) * n_jr / tn;
      for (size_t pc = 0; pc < K; pc += KC) {
        size_t kc = K - pc < KC ? K - pc : KC;
        size_t span = P::span(kc);
        bool first = pc == 0;
#pragma omp for schedule(static)
        for (size_t jr = 0; jr < n_jr; jr++) P::pack_b_panel(b, g.trans_b, N, K, pc, kc, jc + jr * NR, bp + jr * NR * span);
        if (active && jr1 > jr0) {
          for (size_t i0 = r0; i0 < r1; i0 += mc) {
            size_t mcur = r1 - i0 < mc ? r1 - i0 : mc;
            P::pack_a(a, g.trans_a, M, K, i0, mcur, pc, kc, ap);
            for (size_t jr = jr0; jr < jr1; jr++) {
              size_t j0 = jc + jr * NR, nr = N - j0 < NR ? N - j0 : NR;
              const E* bpanel = bp + jr * NR * span;
              const float* bias = g.bias ? g.bias + j0 : nullptr;
              for (size_t ir = 0; ir < mcur; ir += MR) {
                size_t mr = mcur - ir < MR ? mcur - ir : MR;
                P::micro(span, ap + ir * span, bpanel, c + (i0 + ir) * N + j0, N, mr, nr, g.alpha, g.beta, first, bias);
              }
            }
          }
        }
        // every thread is done with these B panels before the next k block overwrites them
#pragma omp barrier
      }
    }
  }
}

// All batch items: in parallel over items when each is small, else one after another on all threads.
template <class P>
static void blocked_gemm(const GemmCall& g) {
  const double flops = 2.0 * g.m * g.n * g.k;
  const bool independent = g.batch > 1 && g.stride_c >= g.m * g.n;
  if (independent && flops < 8e6) {
    int nt = threads_for(flops * g.batch, 4e6);
    if (nt > static_cast<int>(g.batch)) nt = static_cast<int>(g.batch);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t i = 0; i < g.batch; i++)
      blocked_gemm_one<P>(g, g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.stride_c, 1);
    return;
  }
  int nt = threads_for(flops, 2e6);
  for (size_t i = 0; i < g.batch; i++)
    blocked_gemm_one<P>(g, g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.stride_c, nt);
}
