// Multi-tensor optimizer updates as XLA FFI custom calls (x86-64, AVX2): one pass over every
// leaf that reads g, θ and the moments once and writes θ and the moments once, the leaves'
// parameters and gradients in their own buffers and the moments in one flat buffer each.
//
//   Adam(W):       m ← (1−β₁)·g + β₁·m,   v ← (1−β₂)·g² + β₂·v,
//                  u = (m·c₁⁻¹) / (√(v·c₂⁻¹) + ε) + λ·θ,   θ ← θ + (−η)·u
//   SGD-momentum:  τ ← g + μ·τ,   u = τ (or g + μ·τ, Nesterov),   θ ← θ + (−η)·u
//
// with c₁⁻¹ = 1/(1 − β₁^t), c₂⁻¹ = 1/(1 − β₂^t), −η and λ computed by the caller (the `scalars`
// operand), each product and sum rounded to float32 (no contraction into FMAs, which XLA:CPU
// makes in places, so optax's jitted moments may differ by an ulp), and u differs from
// m̂/(√v̂ + ε) by the rounding of the two bias corrections taken as products (one division and one root per element instead of three
// divisions and a root: the divider's throughput, not memory, bounded the three-division loop). Leaf i's moments live at [offset_i, offset_i + n_i) of the
// flat buffers. Threads split the flat index range; the outputs alias the inputs (in place
// when the caller donates them). Operands: scalars (4,), m (N,), [v (N,)], g_0…g_{L−1},
// θ_0…θ_{L−1}; results: m, [v], θ_0…θ_{L−1}.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "simd.h"

namespace {
using namespace jdl_native;

struct Leaf {
  const float *g, *theta;
  float* out;
  int64_t n, offset;
};

// The L leaves from the remaining operands (g_0…g_{L−1}, θ_0…θ_{L−1}) and results (θ'_0…).
ffi::Error gather(ffi::RemainingArgs args, ffi::RemainingRets rets, std::vector<Leaf>& leaves) {
  const size_t n = rets.size();
  if (args.size() != 2 * n) return ffi::Error(ffi::ErrorCode::kInvalidArgument, "expected 2 operands per leaf");
  int64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    auto g = args.get<ffi::Buffer<ffi::F32>>(i);
    auto theta = args.get<ffi::Buffer<ffi::F32>>(n + i);
    auto out = rets.get<ffi::Buffer<ffi::F32>>(i);
    if (!g.has_value() || !theta.has_value() || !out.has_value())
      return ffi::Error(ffi::ErrorCode::kInvalidArgument, "every leaf must be float32");
    const int64_t size = static_cast<int64_t>(theta->element_count());
    leaves.push_back({g->typed_data(), theta->typed_data(), (*out)->typed_data(), size, offset});
    offset += size;
  }
  return ffi::Error::Success();
}

// body(leaf, lo, hi) over each leaf's part of the flat range, the range split over threads in
// blocks of 16 floats (one cache line: no two threads write the same line).
template <class F>
void over_range(const std::vector<Leaf>& leaves, int64_t total, int64_t threads, ffi::ThreadPool* pool, F body) {
  const int t = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, total / 65536)));
  parallel(t, pool, [&](int p) {
    const int64_t lo = total / 16 * p / t * 16, hi = p + 1 == t ? total : total / 16 * (p + 1) / t * 16;
    for (const Leaf& leaf : leaves) {
      const int64_t a = std::max(lo, leaf.offset), b = std::min(hi, leaf.offset + leaf.n);
      if (a < b) body(leaf, a - leaf.offset, b - leaf.offset);
    }
  });
}

struct AdamConsts {
  float b1, omb1, b2, omb2, eps, inv_c1, inv_c2, neg_lr, wd;
};

// Elements [lo, hi) of one leaf; m and v point at the leaf's slice of the flat moments.
__attribute__((optimize("fp-contract=off"))) void adam_span(const AdamConsts& k, const Leaf& leaf, const float* m_in,
                                                            const float* v_in, float* m, float* v, int64_t lo,
                                                            int64_t hi) {
  const __m256 b1 = _mm256_set1_ps(k.b1), omb1 = _mm256_set1_ps(k.omb1), b2 = _mm256_set1_ps(k.b2),
               omb2 = _mm256_set1_ps(k.omb2), eps = _mm256_set1_ps(k.eps), c1 = _mm256_set1_ps(k.inv_c1),
               c2 = _mm256_set1_ps(k.inv_c2), nlr = _mm256_set1_ps(k.neg_lr), wd = _mm256_set1_ps(k.wd);
  int64_t j = lo;
  for (; j + 8 <= hi; j += 8) {
    const __m256 g = _mm256_loadu_ps(leaf.g + j), th = _mm256_loadu_ps(leaf.theta + j);
    const __m256 m1 = _mm256_add_ps(_mm256_mul_ps(omb1, g), _mm256_mul_ps(b1, _mm256_loadu_ps(m_in + j)));
    const __m256 v1 = _mm256_add_ps(_mm256_mul_ps(omb2, _mm256_mul_ps(g, g)), _mm256_mul_ps(b2, _mm256_loadu_ps(v_in + j)));
    __m256 u = _mm256_div_ps(_mm256_mul_ps(m1, c1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(v1, c2)), eps));
    if (k.wd != 0.0f) u = _mm256_add_ps(u, _mm256_mul_ps(wd, th));
    _mm256_storeu_ps(m + j, m1);
    _mm256_storeu_ps(v + j, v1);
    _mm256_storeu_ps(leaf.out + j, _mm256_add_ps(th, _mm256_mul_ps(nlr, u)));
  }
  for (; j < hi; ++j) {
    const float g = leaf.g[j], th = leaf.theta[j];
    const float m1 = k.omb1 * g + k.b1 * m_in[j], v1 = k.omb2 * (g * g) + k.b2 * v_in[j];
    float u = (m1 * k.inv_c1) / (std::sqrt(v1 * k.inv_c2) + k.eps);
    if (k.wd != 0.0f) u = u + k.wd * th;
    m[j] = m1;
    v[j] = v1;
    leaf.out[j] = th + k.neg_lr * u;
  }
}

// scalars = (c₁⁻¹, c₂⁻¹, −η, λ)
ffi::Error AdamImpl(ffi::Buffer<ffi::F32> scalars, ffi::Buffer<ffi::F32> m_in, ffi::Buffer<ffi::F32> v_in,
                    ffi::RemainingArgs rest, ffi::ResultBuffer<ffi::F32> m_out, ffi::ResultBuffer<ffi::F32> v_out,
                    ffi::RemainingRets thetas, float b1, float omb1, float b2, float omb2, float eps, int64_t threads,
                    ffi::ThreadPool pool) {
  std::vector<Leaf> leaves;
  if (auto err = gather(rest, thetas, leaves); err.failure()) return err;
  const float* s = scalars.typed_data();
  const AdamConsts k{b1, omb1, b2, omb2, eps, s[0], s[1], s[2], s[3]};
  const float *mi = m_in.typed_data(), *vi = v_in.typed_data();
  float *mo = m_out->typed_data(), *vo = v_out->typed_data();
  over_range(leaves, static_cast<int64_t>(m_in.element_count()), threads, &pool,
             [&](const Leaf& leaf, int64_t lo, int64_t hi) {
               const int64_t o = leaf.offset;
               adam_span(k, leaf, mi + o, vi + o, mo + o, vo + o, lo, hi);
             });
  return ffi::Error::Success();
}

// Elements [lo, hi) of one leaf; t points at the leaf's slice of the flat momentum.
__attribute__((optimize("fp-contract=off"))) void momentum_span(float mu, float neg_lr, bool nesterov, const Leaf& leaf,
                                                                const float* t_in, float* t, int64_t lo, int64_t hi) {
  const __m256 m8 = _mm256_set1_ps(mu), nlr = _mm256_set1_ps(neg_lr);
  int64_t j = lo;
  for (; j + 8 <= hi; j += 8) {
    const __m256 g = _mm256_loadu_ps(leaf.g + j);
    const __m256 t1 = _mm256_add_ps(g, _mm256_mul_ps(m8, _mm256_loadu_ps(t_in + j)));
    const __m256 u = nesterov ? _mm256_add_ps(g, _mm256_mul_ps(m8, t1)) : t1;
    _mm256_storeu_ps(t + j, t1);
    _mm256_storeu_ps(leaf.out + j, _mm256_add_ps(_mm256_loadu_ps(leaf.theta + j), _mm256_mul_ps(nlr, u)));
  }
  for (; j < hi; ++j) {
    const float g = leaf.g[j], t1 = g + mu * t_in[j], u = nesterov ? g + mu * t1 : t1;
    t[j] = t1;
    leaf.out[j] = leaf.theta[j] + neg_lr * u;
  }
}

// scalars = (−η, unused…)
ffi::Error MomentumImpl(ffi::Buffer<ffi::F32> scalars, ffi::Buffer<ffi::F32> t_in, ffi::RemainingArgs rest,
                        ffi::ResultBuffer<ffi::F32> t_out, ffi::RemainingRets thetas, float mu, bool nesterov,
                        int64_t threads, ffi::ThreadPool pool) {
  std::vector<Leaf> leaves;
  if (auto err = gather(rest, thetas, leaves); err.failure()) return err;
  const float neg_lr = scalars.typed_data()[0];
  const float* ti = t_in.typed_data();
  float* to = t_out->typed_data();
  over_range(leaves, static_cast<int64_t>(t_in.element_count()), threads, &pool,
             [&](const Leaf& leaf, int64_t lo, int64_t hi) {
               momentum_span(mu, neg_lr, nesterov, leaf, ti + leaf.offset, to + leaf.offset, lo, hi);
             });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JdlAdamUpdate, AdamImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .RemainingArgs()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .RemainingRets()
                                  .Attr<float>("b1")
                                  .Attr<float>("omb1")
                                  .Attr<float>("b2")
                                  .Attr<float>("omb2")
                                  .Attr<float>("eps")
                                  .Attr<int64_t>("threads")
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JdlMomentumUpdate, MomentumImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .RemainingArgs()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .RemainingRets()
                                  .Attr<float>("mu")
                                  .Attr<bool>("nesterov")
                                  .Attr<int64_t>("threads")
                                  .Ctx<ffi::ThreadPool>());
