// Causal (or full) scaled dot-product attention, forward and backward, as XLA FFI custom calls
// for x86-64 CPUs with AVX2 and FMA (jdl.kernels.attention_native builds on first use).
//
//   S = Q Kᵀ/√d,  P = softmax(S + M) row by row,  O = P V,  L_i = log Σ_j exp(S_ij)  (saved)
//   backward: P = exp(S − L),  dV = Pᵀ dO,  dP = dO Vᵀ,  D_i = Σ_c dO_ic O_ic,
//             dS = P ⊙ (dP − D),  dQ = dS K/√d,  dK = dSᵀ Q/√d
//
// M is 0 where query i may attend to key j (j ≤ i + n_k − n_q when causal, bottom-right
// aligned as jdl.nn.causal_mask) and −∞ elsewhere; a row with no key gives zeros. Each
// (batch, head) pair is independent: threads take pairs, copy them into zero-padded buffers
// (rows and features rounded up to 16), and multiply with the packed-panel FMA tiles, skipping
// the tiles the causal mask zeroes. Shapes: q (N, n_q, d), k, v (N, n_k, d), o, dO (N, n_q, d),
// lse (N, n_q).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gemm.h"
#include "simd.h"

namespace {
using namespace jdl_native;

struct Dims {
  int64_t pairs, nq, nk, d, nq_p, nk_p, d_p, offset;  // offset: causal shift n_k − n_q, or n_k (none)
  float scale;
  bool aligned;  // n_q, n_k, d multiples of 16: K, V, dO and the outputs used in place, no copies
  int64_t keys(int64_t i) const { return std::min(nk, i + offset + 1); }  // query i sees keys < keys(i)
};

// Per-thread scratch for one (batch, head) pair.
struct Scratch {
  std::vector<float> q, k, v, o, d_o, s, p, t, pk;  // pk: a packed (K × N) operand
  explicit Scratch(const Dims& g)
      : q(g.nq_p * g.d_p), k(g.nk_p * g.d_p), v(g.nk_p * g.d_p), o(std::max(g.nq_p, g.nk_p) * g.d_p),
        d_o(g.nq_p * g.d_p),
        s(g.nq_p * g.nk_p), p(g.nq_p * g.nk_p), t(std::max(g.nq_p, g.nk_p) * std::max(g.nq_p, g.nk_p)),
        pk(g.nk_p * g.d_p) {}
};

// S = (Q/√d) Kᵀ over the columns the mask may let through (w.q holds Q/√d).
void scores(const Dims& g, Scratch& w, const float* k) {
  pack_t(k, g.d_p, g.nk_p, w.pk.data());
  gemm(g.nq_p, g.nk_p, g.d_p, {w.q.data(), g.d_p, 1}, packed(w.pk.data(), g.d_p), w.s.data(), g.nk_p, Part::kColsUpTo,
       [&](int64_t r0, int mr) { return std::min(g.nk, r0 + mr - 1 + g.offset + 1); });
}

// An (n × d) input as the kernel reads it: in place when aligned, else zero-padded into `pad`.
const float* operand(const Dims& g, const float* x, int64_t n, int64_t n_p, std::vector<float>& pad) {
  if (g.aligned) return x;
  load_padded(x, n, g.d, n_p, g.d_p, 1.0f, pad.data());
  return pad.data();
}

// Zero what the products may read past row i's visible keys: up to 5 entries after them (a
// 6-row block reads as far as its last row sees) when aligned; every padded entry otherwise.
void clear_masked(const Dims& g, std::vector<float>& m) {
  if (!g.aligned) {
    for (int64_t i = 0; i < g.nq_p; ++i) {
      const int64_t n = i < g.nq ? std::max<int64_t>(g.keys(i), 0) : 0;
      std::fill(m.begin() + i * g.nk_p + n, m.begin() + (i + 1) * g.nk_p, 0.0f);
    }
    return;
  }
  for (int64_t i = 0; i < g.nq; ++i) {
    const int64_t n = std::max<int64_t>(g.keys(i), 0);
    std::fill(m.begin() + i * g.nk_p + n, m.begin() + i * g.nk_p + std::min(g.nk_p, n + 6), 0.0f);
  }
}

// out (rows × d) ← the padded result, times `scale`; in place when aligned.
void store(const Dims& g, const float* result, int64_t rows, float scale, float* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < g.d; ++c) out[r * g.d + c] = result[r * g.d_p + c] * scale;
}

void forward_pair(const Dims& g, Scratch& w, const float* q, const float* k, const float* v, float* o,
                  float* lse) {
  load_padded(q, g.nq, g.d, g.nq_p, g.d_p, g.scale, w.q.data());
  const float* kk = operand(g, k, g.nk, g.nk_p, w.k);
  const float* vv = operand(g, v, g.nk, g.nk_p, w.v);
  scores(g, w, kk);
  for (int64_t i = 0; i < g.nq; ++i) {
    const int64_t n = g.keys(i);
    const float* s = w.s.data() + i * g.nk_p;
    float* p = w.p.data() + i * g.nk_p;
    if (n <= 0) { lse[i] = -std::numeric_limits<float>::infinity(); continue; }
    __m256 m8 = _mm256_set1_ps(s[0]);
    int64_t jm = 0;
    for (; jm + 8 <= n; jm += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(s + jm));
    float lanes[8];
    _mm256_storeu_ps(lanes, m8);
    float m = lanes[0];
    for (int u = 1; u < 8; ++u) m = std::max(m, lanes[u]);
    for (; jm < n; ++jm) m = std::max(m, s[jm]);
    __m256 sum8 = _mm256_setzero_ps();
    m8 = _mm256_set1_ps(m);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m8));
      _mm256_storeu_ps(p + j, e);
      sum8 = _mm256_add_ps(sum8, e);
    }
    float tail[8] = {0}, buf[8];
    for (int64_t jj = j; jj < n; ++jj) tail[jj - j] = s[jj] - m;
    _mm256_storeu_ps(buf, exp8(_mm256_loadu_ps(tail)));
    _mm256_storeu_ps(tail, sum8);
    float sum = 0.0f;
    for (int u = 0; u < 8; ++u) sum += tail[u];
    for (int64_t jj = j; jj < n; ++jj) { p[jj] = buf[jj - j]; sum += buf[jj - j]; }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    int64_t jj = 0;
    for (; jj + 8 <= n; jj += 8) _mm256_storeu_ps(p + jj, _mm256_mul_ps(_mm256_loadu_ps(p + jj), inv));
    for (; jj < n; ++jj) p[jj] *= 1.0f / sum;
    lse[i] = m + std::log(sum);
  }
  clear_masked(g, w.p);
  float* out = g.aligned ? o : w.o.data();
  gemm(g.nq_p, g.d_p, g.nk_p, {w.p.data(), g.nk_p, 1}, rows(vv, g.d_p), out, g.d_p, Part::kKUpTo,
       [&](int64_t r0, int mr) { return std::min(g.nk, r0 + mr - 1 + g.offset + 1); });
  if (!g.aligned) store(g, w.o.data(), g.nq, 1.0f, o);
}

void backward_pair(const Dims& g, Scratch& w, const float* q, const float* k, const float* v, const float* o,
                   const float* lse, const float* d_o, float* dq, float* dk, float* dv) {
  load_padded(q, g.nq, g.d, g.nq_p, g.d_p, g.scale, w.q.data());
  const float* kk = operand(g, k, g.nk, g.nk_p, w.k);
  const float* vv = operand(g, v, g.nk, g.nk_p, w.v);
  const float* ddo = operand(g, d_o, g.nq, g.nq_p, w.d_o);
  scores(g, w, kk);
  // dP = dO Vᵀ into t, then P into p and dS = P ⊙ (dP − D) into s
  pack_t(vv, g.d_p, g.nk_p, w.pk.data());
  gemm(g.nq_p, g.nk_p, g.d_p, {ddo, g.d_p, 1}, packed(w.pk.data(), g.d_p), w.t.data(), g.nk_p, Part::kColsUpTo,
       [&](int64_t r0, int mr) { return std::min(g.nk, r0 + mr - 1 + g.offset + 1); });
  for (int64_t i = 0; i < g.nq; ++i) {
    const int64_t n = g.keys(i);
    float dd = 0.0f;
    for (int64_t c = 0; c < g.d; ++c) dd += d_o[i * g.d + c] * o[i * g.d + c];
    float* s = w.s.data() + i * g.nk_p;
    float* p = w.p.data() + i * g.nk_p;
    const float* dp = w.t.data() + i * g.nk_p;
    const __m256 l8 = _mm256_set1_ps(lse[i]), dd8 = _mm256_set1_ps(dd);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 pv = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), l8));
      _mm256_storeu_ps(p + j, pv);
      _mm256_storeu_ps(s + j, _mm256_mul_ps(pv, _mm256_sub_ps(_mm256_loadu_ps(dp + j), dd8)));
    }
    for (; j < n; ++j) {
      float buf[8] = {s[j] - lse[i]}, out[8];
      _mm256_storeu_ps(out, exp8(_mm256_loadu_ps(buf)));
      p[j] = out[0];
      s[j] = out[0] * (dp[j] - dd);
    }
  }
  clear_masked(g, w.p);
  clear_masked(g, w.s);
  // key j is seen by queries i ≥ j − offset: the sums over i start there
  auto first_query = [&](int64_t r0, int) { return r0 - g.offset; };
  // dV = Pᵀ dO and dK = dSᵀ (Q/√d), both (nk_p × d_p): Aᵀ read in place (row stride 1, k stride nk_p)
  float* out = g.aligned ? dv : w.o.data();
  gemm(g.nk_p, g.d_p, g.nq_p, {w.p.data(), 1, g.nk_p}, rows(ddo, g.d_p), out, g.d_p, Part::kKFrom, first_query);
  if (!g.aligned) store(g, w.o.data(), g.nk, 1.0f, dv);
  out = g.aligned ? dk : w.o.data();
  gemm(g.nk_p, g.d_p, g.nq_p, {w.s.data(), 1, g.nk_p}, rows(w.q.data(), g.d_p), out, g.d_p, Part::kKFrom, first_query);
  if (!g.aligned) store(g, w.o.data(), g.nk, 1.0f, dk);
  // dQ = dS K / √d
  out = g.aligned ? dq : w.o.data();
  gemm(g.nq_p, g.d_p, g.nk_p, {w.s.data(), g.nk_p, 1}, rows(kk, g.d_p), out, g.d_p, Part::kKUpTo,
       [&](int64_t r0, int mr) { return std::min(g.nk, r0 + mr - 1 + g.offset + 1); });
  store(g, out, g.nq, g.scale, dq);  // in place when aligned
}

Dims dims(const ffi::AnyBuffer::Dimensions& qd, const ffi::AnyBuffer::Dimensions& kd, bool causal) {
  Dims g;
  g.pairs = qd[0], g.nq = qd[1], g.d = qd[2], g.nk = kd[1];
  g.nq_p = up16(g.nq), g.nk_p = up16(g.nk), g.d_p = up16(g.d);
  g.offset = causal ? g.nk - g.nq : g.nk;
  g.scale = 1.0f / std::sqrt(static_cast<float>(g.d));
  g.aligned = g.nq % 16 == 0 && g.nk % 16 == 0 && g.d % 16 == 0;
  return g;
}

// Split the pairs over threads on XLA's pool; each thread keeps one Scratch.
template <class F>
void over_pairs(const Dims& g, int64_t threads, ffi::ThreadPool* pool, F f) {
  const int n = static_cast<int>(std::max<int64_t>(1, std::min(threads, g.pairs)));
  parallel(n, pool, [&](int p) {
    Scratch w(g);
    for (int64_t i = g.pairs * p / n; i < g.pairs * (p + 1) / n; ++i) f(w, i);
  });
}

ffi::Error ForwardImpl(ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k, ffi::Buffer<ffi::F32> v,
                       ffi::ResultBuffer<ffi::F32> o, ffi::ResultBuffer<ffi::F32> lse, bool causal, int64_t threads,
                       ffi::ThreadPool pool) {
  const Dims g = dims(q.dimensions(), k.dimensions(), causal);
  const float *qp = q.typed_data(), *kp = k.typed_data(), *vp = v.typed_data();
  float *op = o->typed_data(), *lp = lse->typed_data();
  over_pairs(g, threads, &pool, [&](Scratch& w, int64_t i) {
    forward_pair(g, w, qp + i * g.nq * g.d, kp + i * g.nk * g.d, vp + i * g.nk * g.d, op + i * g.nq * g.d,
                 lp + i * g.nq);
  });
  return ffi::Error::Success();
}

ffi::Error BackwardImpl(ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k, ffi::Buffer<ffi::F32> v,
                        ffi::Buffer<ffi::F32> o, ffi::Buffer<ffi::F32> lse, ffi::Buffer<ffi::F32> d_o,
                        ffi::ResultBuffer<ffi::F32> dq, ffi::ResultBuffer<ffi::F32> dk,
                        ffi::ResultBuffer<ffi::F32> dv, bool causal, int64_t threads, ffi::ThreadPool pool) {
  const Dims g = dims(q.dimensions(), k.dimensions(), causal);
  const int64_t sq = g.nq * g.d, sk = g.nk * g.d;
  over_pairs(g, threads, &pool, [&](Scratch& w, int64_t i) {
    backward_pair(g, w, q.typed_data() + i * sq, k.typed_data() + i * sk, v.typed_data() + i * sk,
                  o.typed_data() + i * sq, lse.typed_data() + i * g.nq, d_o.typed_data() + i * sq,
                  dq->typed_data() + i * sq, dk->typed_data() + i * sk, dv->typed_data() + i * sk);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JdlAttentionForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("causal")
                                  .Attr<int64_t>("threads")
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JdlAttentionBackward, BackwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("causal")
                                  .Attr<int64_t>("threads")
                                  .Ctx<ffi::ThreadPool>());
