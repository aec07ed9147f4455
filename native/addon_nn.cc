// N-API bindings of the fused nn kernels: softmax, layer/RMS norm, embedding, cross-entropy, rope, attention.
// Argument order follows the Backend interface (src/backends/backend.ts); sizes are checked before any kernel.
#include "addon.h"
#include "dropout.h"
#include "kernels.h"

namespace loom {
namespace {

using Info = Napi::CallbackInfo;

Napi::Value Softmax(const Info& info) {
  Args a{info, "softmax"};
  auto x = a.f32(0, "x"), y = a.f32(1, "out");
  size_t rows = a.size(2, "rows"), cols = a.size(3, "cols");
  bool log = a.flag(4, "log");
  a.need(x, mul(rows, cols), "x");
  a.need(y, rows * cols, "out");
  kernels().softmax(x.data, y.data, rows, cols, log);
  return info.Env().Undefined();
}

Napi::Value SoftmaxBackward(const Info& info) {
  Args a{info, "softmaxBackward"};
  auto y = a.f32(0, "y"), dy = a.f32(1, "dy"), dx = a.f32(2, "dx");
  size_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  size_t n = mul(rows, cols);
  a.need(y, n, "y");
  a.need(dy, n, "dy");
  a.need(dx, n, "dx");
  kernels().softmax_backward(y.data, dy.data, dx.data, rows, cols, a.flag(5, "log"));
  return info.Env().Undefined();
}

// layerNorm(x, w|null, b|null, out, mean, rstd, rows, cols, eps)
Napi::Value LayerNorm(const Info& info) {
  Args a{info, "layerNorm"};
  auto x = a.f32(0, "x"), w = a.f32_opt(1, "w"), b = a.f32_opt(2, "b"), out = a.f32(3, "out"),
       mean = a.f32(4, "mean"), rstd = a.f32(5, "rstd");
  size_t rows = a.size(6, "rows"), cols = a.size(7, "cols");
  size_t n = mul(rows, cols);
  a.need(x, n, "x");
  a.need(out, n, "out");
  if (w) a.need(w, cols, "w");
  if (b) a.need(b, cols, "b");
  a.need(mean, rows, "mean");
  a.need(rstd, rows, "rstd");
  kernels().layernorm(x.data, w.data, b.data, out.data, mean.data, rstd.data, rows, cols,
                      static_cast<float>(a.num(8, "eps")));
  return info.Env().Undefined();
}

// layerNormBackward(dy, x, w|null, mean, rstd, dx, dw|null, db|null, rows, cols)
Napi::Value LayerNormBackward(const Info& info) {
  Args a{info, "layerNormBackward"};
  auto dy = a.f32(0, "dy"), x = a.f32(1, "x"), w = a.f32_opt(2, "w"), mean = a.f32(3, "mean"),
       rstd = a.f32(4, "rstd"), dx = a.f32(5, "dx"), dw = a.f32_opt(6, "dw"), db = a.f32_opt(7, "db");
  size_t rows = a.size(8, "rows"), cols = a.size(9, "cols");
  size_t n = mul(rows, cols);
  a.need(dy, n, "dy");
  a.need(x, n, "x");
  a.need(dx, n, "dx");
  if (w) a.need(w, cols, "w");
  if (dw) a.need(dw, cols, "dw");
  if (db) a.need(db, cols, "db");
  a.need(mean, rows, "mean");
  a.need(rstd, rows, "rstd");
  kernels().layernorm_backward(dy.data, x.data, w.data, mean.data, rstd.data, dx.data, dw.data, db.data, rows, cols);
  return info.Env().Undefined();
}

// rmsNorm(x, w|null, out, rstd, rows, cols, eps)
Napi::Value RmsNorm(const Info& info) {
  Args a{info, "rmsNorm"};
  auto x = a.f32(0, "x"), w = a.f32_opt(1, "w"), out = a.f32(2, "out"), rstd = a.f32(3, "rstd");
  size_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  size_t n = mul(rows, cols);
  a.need(x, n, "x");
  a.need(out, n, "out");
  if (w) a.need(w, cols, "w");
  a.need(rstd, rows, "rstd");
  kernels().rmsnorm(x.data, w.data, out.data, rstd.data, rows, cols, static_cast<float>(a.num(6, "eps")));
  return info.Env().Undefined();
}

// rmsNormBackward(dy, x, w|null, rstd, dx, dw|null, rows, cols)
Napi::Value RmsNormBackward(const Info& info) {
  Args a{info, "rmsNormBackward"};
  auto dy = a.f32(0, "dy"), x = a.f32(1, "x"), w = a.f32_opt(2, "w"), rstd = a.f32(3, "rstd"), dx = a.f32(4, "dx"),
       dw = a.f32_opt(5, "dw");
  size_t rows = a.size(6, "rows"), cols = a.size(7, "cols");
  size_t n = mul(rows, cols);
  a.need(dy, n, "dy");
  a.need(x, n, "x");
  a.need(dx, n, "dx");
  if (w) a.need(w, cols, "w");
  if (dw) a.need(dw, cols, "dw");
  a.need(rstd, rows, "rstd");
  kernels().rmsnorm_backward(dy.data, x.data, w.data, rstd.data, dx.data, dw.data, rows, cols);
  return info.Env().Undefined();
}

// embedding(ids, table, out, n, dim, vocab) / embeddingBackward(ids, dy, dTable, n, dim, vocab)
Napi::Value Embedding(const Info& info) {
  Args a{info, "embedding"};
  auto ids = a.i32(0, "ids");
  auto table = a.f32(1, "table"), out = a.f32(2, "out");
  size_t n = a.size(3, "n"), dim = a.size(4, "dim"), vocab = a.size(5, "vocab");
  a.need(ids, n, "ids");
  a.need(table, mul(vocab, dim), "table");
  a.need(out, mul(n, dim), "out");
  embedding(ids.data, table.data, out.data, n, dim, vocab);
  return info.Env().Undefined();
}

Napi::Value EmbeddingBackward(const Info& info) {
  Args a{info, "embeddingBackward"};
  auto ids = a.i32(0, "ids");
  auto dy = a.f32(1, "dy"), dt = a.f32(2, "dTable");
  size_t n = a.size(3, "n"), dim = a.size(4, "dim"), vocab = a.size(5, "vocab");
  a.need(ids, n, "ids");
  a.need(dy, mul(n, dim), "dy");
  a.need(dt, mul(vocab, dim), "dTable");
  embedding_backward(ids.data, dy.data, dt.data, n, dim, vocab);
  return info.Env().Undefined();
}

int32_t ignore_index(const Args& a, size_t i) {
  int64_t v = a.integer(i, "ignoreIndex");
  if (v < INT32_MIN || v > INT32_MAX) a.bad(i, "ignoreIndex", "must fit in int32");
  return static_cast<int32_t>(v);
}

// crossEntropy(logits, targets, losses, lse, rows, cols, ignoreIndex, smoothing)
Napi::Value CrossEntropy(const Info& info) {
  Args a{info, "crossEntropy"};
  auto x = a.f32(0, "logits");
  auto t = a.i32(1, "targets");
  auto losses = a.f32(2, "losses"), lse = a.f32(3, "lse");
  size_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  a.need(x, mul(rows, cols), "logits");
  a.need(t, rows, "targets");
  a.need(losses, rows, "losses");
  a.need(lse, rows, "lse");
  if (cols == 0 && rows > 0) fail("crossEntropy: cols must be > 0");
  kernels().cross_entropy(x.data, t.data, losses.data, lse.data, rows, cols, ignore_index(a, 6),
                          static_cast<float>(a.num(7, "smoothing")));
  return info.Env().Undefined();
}

// crossEntropyBackward(logits, targets, lse, dlogits, rows, cols, ignoreIndex, smoothing, gradScale)
Napi::Value CrossEntropyBackward(const Info& info) {
  Args a{info, "crossEntropyBackward"};
  auto x = a.f32(0, "logits");
  auto t = a.i32(1, "targets");
  auto lse = a.f32(2, "lse"), dx = a.f32(3, "dlogits");
  size_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  size_t n = mul(rows, cols);
  a.need(x, n, "logits");
  a.need(t, rows, "targets");
  a.need(lse, rows, "lse");
  a.need(dx, n, "dlogits");
  kernels().cross_entropy_backward(x.data, t.data, lse.data, dx.data, rows, cols, ignore_index(a, 6),
                                   static_cast<float>(a.num(7, "smoothing")), static_cast<float>(a.num(8, "gradScale")));
  return info.Env().Undefined();
}

// rope(x, out, invFreq, positions, batch, heads, t, headDim, rotaryDim, inverse, tokenMajor)
Napi::Value Rope(const Info& info) {
  Args a{info, "rope"};
  auto x = a.f32(0, "x"), out = a.f32(1, "out"), inv = a.f32(2, "invFreq");
  auto pos = a.i32(3, "positions");
  size_t b = a.size(4, "batch"), h = a.size(5, "heads"), t = a.size(6, "t"), hd = a.size(7, "headDim"),
         rd = a.size(8, "rotaryDim");
  if (rd % 2 != 0 || rd > hd) fail("rope: rotaryDim must be even and <= headDim");
  size_t n = mul(b, h, t, hd);
  a.need(x, n, "x");
  a.need(out, n, "out");
  a.need(inv, rd / 2, "invFreq");
  a.need(pos, mul(b, t), "positions");
  rope(x.data, out.data, inv.data, pos.data, b, h, t, hd, rd, a.flag(9, "inverse"), a.flag(10, "tokenMajor"));
  return info.Env().Undefined();
}

// Element strides of one attention operand: contiguous (B, H, T, D) unless the layout argument gives them.
AttnStrides contiguous(size_t heads, size_t t, size_t d) { return {0, heads * t * d, t * d, d}; }

// The layout argument: null (all contiguous) or 16 integers, (offset, batch, head, token) for q, k, v, out.
void read_layout(const Args& a, size_t i, AttnCall& c) {
  Napi::Value v = a.info[i];
  c.lq = contiguous(c.heads_q, c.tq, c.head_dim);
  c.lk = c.lv = contiguous(c.heads_kv, c.tk, c.head_dim);
  c.lo = c.lq;
  if (v.IsNull() || v.IsUndefined()) return;
  std::vector<int64_t> n = a.ints(i, "layout");
  if (n.size() != 16) a.bad(i, "layout", "must hold 16 integers (offset, batch, head, token for q, k, v, out)");
  AttnStrides* ls[4] = {&c.lq, &c.lk, &c.lv, &c.lo};
  for (size_t j = 0; j < 16; j++) {
    if (n[j] < 0) a.bad(i, "layout", "must not hold negative offsets or strides");
    size_t x = static_cast<size_t>(n[j]);
    AttnStrides& l = *ls[j / 4];
    (j % 4 == 0 ? l.off : j % 4 == 1 ? l.batch : j % 4 == 2 ? l.head : l.token) = x;
  }
}

// Throws unless every row (b, h, t) of a (B, H, T, D) operand read or written through `l` lies in `st`.
void need_layout(const Args& a, const View<float>& st, const AttnStrides& l, size_t batch, size_t heads, size_t t,
                 size_t d, const char* name) {
  if (batch == 0 || heads == 0 || t == 0 || d == 0) return;
  size_t end = l.off;  // one past the furthest element
  auto add = [&](size_t x) {
    if (__builtin_add_overflow(end, x, &end)) fail(std::string(a.fn) + ": " + name + " layout overflows");
  };
  add(mul(batch - 1, l.batch));
  add(mul(heads - 1, l.head));
  add(mul(t - 1, l.token));
  add(d);
  if (st.n < end)
    fail(std::string(a.fn) + ": " + name + " has " + std::to_string(st.n) + " elements, the call needs " +
         std::to_string(end) + " (its layout)");
}

// Shared tail of attention / attentionBackward: (batch, headsQ, headsKV, tq, tk, headDim, scale, causal,
// dropoutP, seed, layout|null) starting at argument `i`; checks q/k/v/mask sizes.
AttnCall attn_args(const Args& a, size_t i, View<float> q, View<float> k, View<float> v, View<int32_t> mask) {
  AttnCall c;
  c.batch = a.size(i, "batch");
  c.heads_q = a.size(i + 1, "headsQ");
  c.heads_kv = a.size(i + 2, "headsKV");
  c.tq = a.size(i + 3, "tq");
  c.tk = a.size(i + 4, "tk");
  c.head_dim = a.size(i + 5, "headDim");
  c.scale = static_cast<float>(a.num(i + 6, "scale"));
  c.causal = a.flag(i + 7, "causal");
  c.dropout_p = a.num(i + 8, "dropoutP");
  c.seed = to_uint32(a.num(i + 9, "seed"));
  if (c.heads_kv == 0 ? c.heads_q != 0 : c.heads_q % c.heads_kv != 0)
    fail(std::string(a.fn) + ": headsQ " + std::to_string(c.heads_q) + " is not a multiple of headsKV " +
         std::to_string(c.heads_kv));
  if (!(c.dropout_p >= 0 && c.dropout_p < 1)) fail(std::string(a.fn) + ": dropoutP must be in [0, 1)");
  if (c.tk > 2147483647u || c.tq > 2147483647u) fail(std::string(a.fn) + ": sequence too long");
  read_layout(a, i + 10, c);
  need_layout(a, q, c.lq, c.batch, c.heads_q, c.tq, c.head_dim, "q");
  need_layout(a, k, c.lk, c.batch, c.heads_kv, c.tk, c.head_dim, "k");
  need_layout(a, v, c.lv, c.batch, c.heads_kv, c.tk, c.head_dim, "v");
  if (mask) a.need(mask, mul(c.batch, c.tk), "keyMask");
  c.q = q.data;
  c.k = k.data;
  c.v = v.data;
  c.mask = mask.data;
  return c;
}

// attention(q, k, v, keyMask|null, out, lse, ...attn_args)
Napi::Value Attention(const Info& info) {
  Args a{info, "attention"};
  auto q = a.f32(0, "q"), k = a.f32(1, "k"), v = a.f32(2, "v");
  auto mask = a.i32_opt(3, "keyMask");
  auto out = a.f32(4, "out"), lse = a.f32(5, "lse");
  AttnCall c = attn_args(a, 6, q, k, v, mask);
  need_layout(a, out, c.lo, c.batch, c.heads_q, c.tq, c.head_dim, "out");
  a.need(lse, mul(c.batch, c.heads_q, c.tq), "lse");
  if (c.heads_kv == 0) return info.Env().Undefined();
  kernels().attention(c, out.data, lse.data);
  return info.Env().Undefined();
}

// attentionBackward(q, k, v, keyMask|null, out, lse, dOut, dq, dk, dv, ...attn_args)
Napi::Value AttentionBackward(const Info& info) {
  Args a{info, "attentionBackward"};
  auto q = a.f32(0, "q"), k = a.f32(1, "k"), v = a.f32(2, "v");
  auto mask = a.i32_opt(3, "keyMask");
  auto out = a.f32(4, "out"), lse = a.f32(5, "lse"), dout = a.f32(6, "dOut"), dq = a.f32(7, "dq"),
       dk = a.f32(8, "dk"), dv = a.f32(9, "dv");
  AttnCall c = attn_args(a, 10, q, k, v, mask);
  need_layout(a, out, c.lo, c.batch, c.heads_q, c.tq, c.head_dim, "out");
  a.need(lse, mul(c.batch, c.heads_q, c.tq), "lse");
  need_layout(a, dout, c.lo, c.batch, c.heads_q, c.tq, c.head_dim, "dOut");
  need_layout(a, dq, c.lq, c.batch, c.heads_q, c.tq, c.head_dim, "dq");
  need_layout(a, dk, c.lk, c.batch, c.heads_kv, c.tk, c.head_dim, "dk");
  need_layout(a, dv, c.lv, c.batch, c.heads_kv, c.tk, c.head_dim, "dv");
  if (c.heads_kv == 0) return info.Env().Undefined();
  kernels().attention_backward(c, out.data, lse.data, dout.data, dq.data, dk.data, dv.data);
  return info.Env().Undefined();
}

}  // namespace

void register_nn(Napi::Env env, Napi::Object exports) {
  auto add = [&](const char* name, Napi::Value (*fn)(const Info&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  add("softmax", Softmax);
  add("softmaxBackward", SoftmaxBackward);
  add("layerNorm", LayerNorm);
  add("layerNormBackward", LayerNormBackward);
  add("rmsNorm", RmsNorm);
  add("rmsNormBackward", RmsNormBackward);
  add("embedding", Embedding);
  add("embeddingBackward", EmbeddingBackward);
  add("crossEntropy", CrossEntropy);
  add("crossEntropyBackward", CrossEntropyBackward);
  add("rope", Rope);
  add("attention", Attention);
  add("attentionBackward", AttentionBackward);
}

}  // namespace loom
