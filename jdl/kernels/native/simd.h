// Shared pieces of jdl's native CPU kernels (AVX2 + FMA): vector e^x, σ and tanh, a
// register-blocked matmul tile, a spin barrier, and a parallel-for on XLA's intra-op pool.
#pragma once

#include <immintrin.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jdl_native {

// e^x to ~1 ulp in float32 (Cephes' expf: x = n ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial).
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// σ(x) = 1 / (1 + e^{−x})
inline __m256 sigmoid8(__m256 x) {
  __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// tanh x = sign(x)·(1 − 2/(e^{2|x|} + 1)), and its Taylor series x − x³/3 + 2x⁵/15 − 17x⁷/315 +
// 62x⁹/2835 for |x| < 1/4, where the first form would lose relative precision.
inline __m256 tanh8(__m256 x) {
  __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  __m256 one = _mm256_set1_ps(1.0f);
  __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                                _mm256_add_ps(exp8(_mm256_add_ps(a, a)), one)));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(62.0f / 2835.0f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-17.0f / 315.0f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.0f / 15.0f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.0f / 3.0f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, x2), x, x);
  __m256 is_small = _mm256_cmp_ps(a, _mm256_set1_ps(0.25f), _CMP_LT_OQ);
  return _mm256_blendv_ps(_mm256_or_ps(big, sign), small, is_small);
}

// C[r, :] = init[r, :] + Σ_k A[r, k] P[k, :] for MR rows and 8·NV columns; P is a packed panel
// (K rows of 8·NV floats); init may be null (zeros) and may alias C.
template <int MR, int NV>
inline void tile(const float* a, int64_t lda, const float* panel, int64_t k, const float* init,
                 int64_t ldi, float* c, int64_t ldc) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      acc[r][v] = init ? _mm256_loadu_ps(init + r * ldi + 8 * v) : _mm256_setzero_ps();
  for (int64_t kk = 0; kk < k; ++kk) {
    __m256 b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(panel + kk * 8 * NV + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m256 av = _mm256_broadcast_ss(a + r * lda + kk);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
}

template <int NV>
void tile_rows(int mr, const float* a, int64_t lda, const float* panel, int64_t k,
               const float* init, int64_t ldi, float* c, int64_t ldc) {
  switch (mr) {
    case 6: return tile<6, NV>(a, lda, panel, k, init, ldi, c, ldc);
    case 5: return tile<5, NV>(a, lda, panel, k, init, ldi, c, ldc);
    case 4: return tile<4, NV>(a, lda, panel, k, init, ldi, c, ldc);
    case 3: return tile<3, NV>(a, lda, panel, k, init, ldi, c, ldc);
    case 2: return tile<2, NV>(a, lda, panel, k, init, ldi, c, ldc);
    default: return tile<1, NV>(a, lda, panel, k, init, ldi, c, ldc);
  }
}

// A sense-reversing spin barrier; waiters yield the core after a short spin.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spin = 0; gen_.load(std::memory_order_acquire) == gen; ++spin) {
      if (spin < 4000) _mm_pause(); else std::this_thread::yield();
    }
  }

 private:
  int n_;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

// Run body(p) for p < threads, p = 0 on the calling thread. The others run as tasks on XLA's
// intra-op pool where it has enough threads (no extra threads competing for the cores with the
// pool's own, which spin while they wait for work), else on threads of their own.
inline void parallel(int threads, ffi::ThreadPool* pool, const std::function<void(int)>& body) {
  if (pool && pool->num_threads() >= threads) {
    std::atomic<int> done{0};
    for (int p = 1; p < threads; ++p)
      pool->Schedule([&body, &done, p] {
        body(p);
        done.fetch_add(1, std::memory_order_release);
      });
    body(0);
    while (done.load(std::memory_order_acquire) < threads - 1) _mm_pause();
    return;
  }
  std::vector<std::thread> own;
  for (int p = 1; p < threads; ++p) own.emplace_back(body, p);
  body(0);
  for (auto& t : own) t.join();
}

}  // namespace jdl_native
