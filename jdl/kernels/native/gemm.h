// Small matrix products for the attention kernel (AVX2 + FMA): a 6 × 16 register tile that reads
// A with any strides (so Aᵀ needs no copy) and B as 16-column rows or packed panels, a gemm that
// skips the part of a product a causal mask zeroes, and the copies that feed them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "simd.h"

namespace jdl_native {

inline int64_t up16(int64_t n) { return (n + 15) / 16 * 16; }

// Which part of a product the mask lets through, per 6-row block [r0, r0 + mr):
//   kColsUpTo: output columns < hi; kKUpTo: the sum over k < hi;
//   kKFrom: the sum over k ≥ lo (hi, lo from the row block and the causal offset).
enum class Part { kColsUpTo, kKUpTo, kKFrom };

// C[r, 0:16] = Σ_k A[r·lda + k·ldk] B[k·ldb + 0:16] for MR rows: A read with any strides (so Aᵀ
// needs no copy), B 16 contiguous columns per k (a packed panel, or a row-major matrix).
template <int MR>
inline void tile16(const float* a, int64_t lda, int64_t ldk, const float* b, int64_t ldb, int64_t k, float* c,
                   int64_t ldc) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(b + kk * ldb), b1 = _mm256_loadu_ps(b + kk * ldb + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + kk * ldk);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

inline void tile16_rows(int mr, const float* a, int64_t lda, int64_t ldk, const float* b, int64_t ldb, int64_t k,
                 float* c, int64_t ldc) {
  switch (mr) {
    case 6: return tile16<6>(a, lda, ldk, b, ldb, k, c, ldc);
    case 5: return tile16<5>(a, lda, ldk, b, ldb, k, c, ldc);
    case 4: return tile16<4>(a, lda, ldk, b, ldb, k, c, ldc);
    case 3: return tile16<3>(a, lda, ldk, b, ldb, k, c, ldc);
    case 2: return tile16<2>(a, lda, ldk, b, ldb, k, c, ldc);
    default: return tile16<1>(a, lda, ldk, b, ldb, k, c, ldc);
  }
}

// An operand: element (i, k) at data[i·ld + k·ldk] (A), or 16-column panels (B): panel j0/16
// starts at data + (j0/16)·panel, its row k at + k·ld.
struct A { const float* data; int64_t ld, ldk; };
struct B { const float* data; int64_t ld, panel; };
inline B packed(const float* p, int64_t k) { return {p, 16, 16 * k}; }
inline B rows(const float* m, int64_t ld) { return {m, ld, 16}; }

// C (M × N) = A (M × K) · B (K × N), N a multiple of 16; `limit(r0, mr)` is the bound that
// `part` reads (a bound past the matrix: the whole product). Skipped columns of C are left as
// they were; skipped terms of a sum are zeros of A by construction.
template <class Limit>
void gemm(int64_t m, int64_t n, int64_t k, A a, B b, float* c, int64_t ldc, Part part, Limit limit) {
  for (int64_t r0 = 0; r0 < m; r0 += 6) {
    const int mr = static_cast<int>(std::min<int64_t>(6, m - r0));
    const int64_t bound = limit(r0, mr);
    int64_t k_lo = 0, k_hi = k, n_hi = n;
    if (part == Part::kColsUpTo) n_hi = std::min(n, up16(std::max<int64_t>(bound, 0)));
    if (part == Part::kKUpTo) k_hi = std::clamp<int64_t>(bound, 0, k);
    if (part == Part::kKFrom) k_lo = std::clamp<int64_t>(bound, 0, k);
    for (int64_t j0 = 0; j0 < n_hi; j0 += 16) {
      float* out = c + r0 * ldc + j0;
      if (k_hi <= k_lo) {
        for (int r = 0; r < mr; ++r) std::fill(out + r * ldc, out + r * ldc + 16, 0.0f);
        continue;
      }
      tile16_rows(mr, a.data + r0 * a.ld + k_lo * a.ldk, a.ld, a.ldk, b.data + j0 / 16 * b.panel + k_lo * b.ld,
                  b.ld, k_hi - k_lo, out, ldc);
    }
  }
}

// Pack Bᵀ for B = Mᵀ, M (N × K) row-major: N/16 panels of K × 16 (column j of B is row j of M).
inline void pack_t(const float* m, int64_t k, int64_t n, float* out) {
  for (int64_t j0 = 0; j0 < n; j0 += 16)
    for (int64_t j = 0; j < 16; ++j) {
      const float* row = m + (j0 + j) * k;
      float* col = out + j0 * k + j;
      for (int64_t kk = 0; kk < k; ++kk) col[kk * 16] = row[kk];
    }
}

// dst (rows_p × cols_p, zero-padded) ← src (rows × cols), scaled.
inline void load_padded(const float* src, int64_t rows, int64_t cols, int64_t rows_p, int64_t cols_p, float scale,
                 float* dst) {
  std::fill(dst, dst + rows_p * cols_p, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * cols_p + c] = src[r * cols + c] * scale;
}

}  // namespace jdl_native
