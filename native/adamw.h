// Multi-tensor AdamW (ISA-generic, included by native/isa_*.cc), the float32 op order of torch.optim.AdamW
// (foreach=False), after clip_grad_norm_'s g *= scale: p *= 1 - lr*wd; m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g;
// p += -step_size * m / (sqrt(v) / sqrt(bc2) + eps), bias corrections in double. The build has no FMA
// contraction, so each float op rounds like PyTorch's kernels (bit-identical to its op order).

static void adamw_chunk(float* LOOM_RESTRICT p, const float* LOOM_RESTRICT g, float* LOOM_RESTRICT m,
                        float* LOOM_RESTRICT v, size_t n, float decay, float b1, float one_b1, float b2, float one_b2,
                        float neg_step, float bc2_sqrt, float eps, float scale) {
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] * scale;
    float pi = p[i] * decay;
    float mi = m[i] * b1;
    mi = mi + one_b1 * gi;
    float vi = v[i] * b2;
    vi = vi + one_b2 * gi * gi;
    float denom = __builtin_sqrtf(vi) / bc2_sqrt;
    denom = denom + eps;
    pi = pi + neg_step * mi / denom;
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

static void adamw(const AdamWTensor* ts, size_t count, const AdamWHyper& h) {
  double bc1 = 1.0 - std::pow(h.beta1, h.step);
  double bc2 = 1.0 - std::pow(h.beta2, h.step);
  float neg_step = static_cast<float>(-(h.lr / bc1));
  float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  float b1 = static_cast<float>(h.beta1), one_b1 = static_cast<float>(1.0 - h.beta1);
  float b2 = static_cast<float>(h.beta2), one_b2 = static_cast<float>(1.0 - h.beta2);
  float eps = static_cast<float>(h.eps);
  float scale = static_cast<float>(h.grad_scale);
  constexpr size_t CH = 1 << 14;
  std::vector<std::pair<size_t, size_t>> chunks;  // (tensor, start)
  size_t total = 0;
  for (size_t t = 0; t < count; t++) {
    total += ts[t].n;
    for (size_t s = 0; s < ts[t].n; s += CH) chunks.push_back({t, s});
  }
  int nt = threads_for(static_cast<double>(total), 1 << 15);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
  for (size_t c = 0; c < chunks.size(); c++) {
    const AdamWTensor& t = ts[chunks[c].first];
    size_t s = chunks[c].second, n = t.n - s < CH ? t.n - s : CH;
    float decay = static_cast<float>(1.0 - h.lr * t.weight_decay);
    adamw_chunk(t.p + s, t.g + s, t.m + s, t.v + s, n, decay, b1, one_b1, b2, one_b2, neg_step, bc2_sqrt, eps, scale);
  }
}
