// The LSTM recurrence of jdl.kernels.lstm (forward scan and hand-written BPTT) as two XLA FFI
// custom calls for x86-64 CPUs with AVX2 and FMA, built on first use by jdl.kernels.native.
//
//   z_t = xw_t + h_{t-1} W_h,   [i, f, g, o] = [σ, σ, tanh, σ](z_t),
//   c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)
//
// Threads split the hidden units: thread p owns units [u0, u1) of all four gates, so its gate
// math needs only its own columns of z_t; the threads meet at a barrier once per step, when
// h_t (forward) or ∂L/∂z_t (backward) is complete. Each thread packs its columns of W_h (W_hᵀ in
// the backward) once per call into 16-column panels and multiplies with a register-blocked
// (≤6 rows × 16 columns) FMA kernel. Shapes: xw, acts, dz (T, B, 4H); hs, cs, dhs (T, B, H);
// w_h (H, 4H); h0, c0, dc_T, dh0, dc0 (B, H). Gate order i, f, g, o.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "simd.h"

namespace {
using namespace jdl_native;

// A panel: `width` (8 or 16) output columns starting at `col`, packed as K × width floats.
struct Panel {
  int64_t col, width;
  std::vector<float> data;
};

// C[:, panel columns] = init + A · panel for all B rows, in blocks of 6 rows, and over K in
// chunks of KC rows of the panel (16 KB at width 16: it stays in L1 while the row blocks pass).
// A chunk after the first continues from the float32 partial sums in C, so the sums are the
// same, in the same order, as without chunks.
constexpr int64_t KC = 256;

void multiply(const Panel& p, int64_t rows, const float* a, int64_t lda, int64_t k,
              const float* init, int64_t ldi, float* c, int64_t ldc) {
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    const int64_t kc = std::min(KC, k - k0);
    const float* panel = p.data.data() + k0 * p.width;
    for (int64_t r0 = 0; r0 < rows; r0 += 6) {
      int mr = static_cast<int>(std::min<int64_t>(6, rows - r0));
      float* out = c + r0 * ldc + p.col;
      const float* in = k0 ? out : init ? init + r0 * ldi + p.col : nullptr;
      const int64_t ld_in = k0 ? ldc : ldi;
      if (p.width == 16)
        tile_rows<2>(mr, a + r0 * lda + k0, lda, panel, kc, in, ld_in, out, ldc);
      else
        tile_rows<1>(mr, a + r0 * lda + k0, lda, panel, kc, in, ld_in, out, ldc);
    }
  }
}

// The units [u0, u1) of thread p: H/8 groups of 8 split as evenly as possible.
std::pair<int64_t, int64_t> units_of(int p, int threads, int64_t h) {
  int64_t groups = h / 8;
  return {groups * p / threads * 8, groups * (p + 1) / threads * 8};
}

// Panels over the columns col_base + [u0, u1) of a (K, ld) matrix M (transposed: M is (·, K)).
std::vector<Panel> pack(const float* m, int64_t k, int64_t ld, int64_t col_base, int64_t u0,
                        int64_t u1, bool transposed) {
  std::vector<Panel> panels;
  for (int64_t u = u0; u < u1; u += 16) {
    Panel p{col_base + u, std::min<int64_t>(16, u1 - u), {}};
    p.data.resize(k * p.width);
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < p.width; ++j)
        p.data[kk * p.width + j] = transposed ? m[(u + j) * ld + kk] : m[kk * ld + col_base + u + j];
    panels.push_back(std::move(p));
  }
  return panels;
}

void forward(int64_t t_len, int64_t b, int64_t h, const float* xw, const float* w_h, const float* h0,
             const float* c0, float* hs, float* cs, float* acts, int threads, ffi::ThreadPool* pool) {
  const int64_t g4 = 4 * h;
  Barrier barrier(threads);
  parallel(threads, pool, [&](int p) {
    auto [u0, u1] = units_of(p, threads, h);
    std::vector<Panel> panels;
    for (int64_t q = 0; q < 4; ++q) {
      auto gate = pack(w_h, h, g4, q * h, u0, u1, false);
      for (auto& x : gate) panels.push_back(std::move(x));
    }
    for (int64_t t = 0; t < t_len; ++t) {
      const float* h_prev = t ? hs + (t - 1) * b * h : h0;
      const float* c_prev = t ? cs + (t - 1) * b * h : c0;
      float* z = acts + t * b * g4;
      for (const Panel& pn : panels) multiply(pn, b, h_prev, h, h, xw + t * b * g4, g4, z, g4);
      for (int64_t r = 0; r < b; ++r) {
        float* zr = z + r * g4;
        for (int64_t u = u0; u < u1; u += 8) {
          __m256 i = sigmoid8(_mm256_loadu_ps(zr + u)), f = sigmoid8(_mm256_loadu_ps(zr + h + u));
          __m256 g = tanh8(_mm256_loadu_ps(zr + 2 * h + u)), o = sigmoid8(_mm256_loadu_ps(zr + 3 * h + u));
          __m256 c = _mm256_fmadd_ps(f, _mm256_loadu_ps(c_prev + r * h + u), _mm256_mul_ps(i, g));
          _mm256_storeu_ps(zr + u, i);
          _mm256_storeu_ps(zr + h + u, f);
          _mm256_storeu_ps(zr + 2 * h + u, g);
          _mm256_storeu_ps(zr + 3 * h + u, o);
          _mm256_storeu_ps(cs + (t * b + r) * h + u, c);
          _mm256_storeu_ps(hs + (t * b + r) * h + u, _mm256_mul_ps(o, tanh8(c)));
        }
      }
      barrier.wait();
    }
  });
}

void backward(int64_t t_len, int64_t b, int64_t h, const float* dhs, const float* dc_t,
              const float* acts, const float* cs, const float* c0, const float* w_h, float* dz,
              float* dh0, float* dc0, int threads, ffi::ThreadPool* pool) {
  const int64_t g4 = 4 * h;
  Barrier barrier(threads);
  parallel(threads, pool, [&](int p) {
    auto [u0, u1] = units_of(p, threads, h);
    const int64_t nu = u1 - u0;
    std::vector<Panel> panels = pack(w_h, g4, g4, -u0, u0, u1, true);  // W_hᵀ (4H, own units)
    std::vector<float> dh(b * nu), dc(b * nu);
    for (int64_t r = 0; r < b; ++r)
      std::copy(dc_t + r * h + u0, dc_t + r * h + u1, dc.begin() + r * nu);
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t t = t_len - 1; t >= 0; --t) {
      // ∂L/∂h_t = dhs_t + dz_{t+1} W_hᵀ (own units), into dh (B, nu)
      const float* dh_out = dhs + t * b * h + u0;
      if (t == t_len - 1) {
        for (int64_t r = 0; r < b; ++r) std::copy(dh_out + r * h, dh_out + r * h + nu, dh.begin() + r * nu);
      } else {
        for (const Panel& pn : panels)
          multiply(pn, b, dz + (t + 1) * b * g4, g4, g4, dh_out, h, dh.data(), nu);
      }
      const float* c_prev = t ? cs + (t - 1) * b * h : c0;
      for (int64_t r = 0; r < b; ++r) {
        const float* ar = acts + (t * b + r) * g4;
        float* dzr = dz + (t * b + r) * g4;
        for (int64_t u = u0; u < u1; u += 8) {
          __m256 i = _mm256_loadu_ps(ar + u), f = _mm256_loadu_ps(ar + h + u);
          __m256 g = _mm256_loadu_ps(ar + 2 * h + u), o = _mm256_loadu_ps(ar + 3 * h + u);
          __m256 tc = tanh8(_mm256_loadu_ps(cs + (t * b + r) * h + u));
          __m256 dhv = _mm256_loadu_ps(dh.data() + r * nu + (u - u0));
          float* dcp = dc.data() + r * nu + (u - u0);
          __m256 dcv = _mm256_add_ps(_mm256_loadu_ps(dcp),
                                     _mm256_mul_ps(_mm256_mul_ps(dhv, o), _mm256_sub_ps(one, _mm256_mul_ps(tc, tc))));
          _mm256_storeu_ps(dzr + u, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dcv, g), i), _mm256_sub_ps(one, i)));
          _mm256_storeu_ps(dzr + h + u, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dcv, _mm256_loadu_ps(c_prev + r * h + u)), f),
                                                      _mm256_sub_ps(one, f)));
          _mm256_storeu_ps(dzr + 2 * h + u, _mm256_mul_ps(_mm256_mul_ps(dcv, i), _mm256_sub_ps(one, _mm256_mul_ps(g, g))));
          _mm256_storeu_ps(dzr + 3 * h + u, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dhv, tc), o), _mm256_sub_ps(one, o)));
          _mm256_storeu_ps(dcp, _mm256_mul_ps(dcv, f));
        }
      }
      barrier.wait();
    }
    for (const Panel& pn : panels) multiply(pn, b, dz, g4, g4, nullptr, 0, dh0 + u0, h);
    for (int64_t r = 0; r < b; ++r) std::copy(dc.begin() + r * nu, dc.begin() + (r + 1) * nu, dc0 + r * h + u0);
  });
}

ffi::Error check(int64_t h, int64_t threads) {
  if (h % 8) return ffi::Error::InvalidArgument("jdl native LSTM: H must be a multiple of 8");
  if (threads < 1 || threads > h / 8)
    return ffi::Error::InvalidArgument("jdl native LSTM: threads must be in 1..H/8");
  return ffi::Error::Success();
}

ffi::Error ForwardImpl(ffi::Buffer<ffi::F32> xw, ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> h0,
                       ffi::Buffer<ffi::F32> c0, ffi::ResultBuffer<ffi::F32> hs,
                       ffi::ResultBuffer<ffi::F32> cs, ffi::ResultBuffer<ffi::F32> acts, int64_t threads,
                       ffi::ThreadPool pool) {
  auto d = xw.dimensions();  // (T, B, 4H)
  int64_t h = d[2] / 4;
  if (auto e = check(h, threads); e.failure()) return e;
  forward(d[0], d[1], h, xw.typed_data(), w_h.typed_data(), h0.typed_data(), c0.typed_data(),
          hs->typed_data(), cs->typed_data(), acts->typed_data(), static_cast<int>(threads), &pool);
  return ffi::Error::Success();
}

ffi::Error BackwardImpl(ffi::Buffer<ffi::F32> dhs, ffi::Buffer<ffi::F32> dc_t, ffi::Buffer<ffi::F32> acts,
                        ffi::Buffer<ffi::F32> cs, ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> w_h,
                        ffi::ResultBuffer<ffi::F32> dz, ffi::ResultBuffer<ffi::F32> dh0,
                        ffi::ResultBuffer<ffi::F32> dc0, int64_t threads, ffi::ThreadPool pool) {
  auto d = dhs.dimensions();  // (T, B, H)
  if (auto e = check(d[2], threads); e.failure()) return e;
  backward(d[0], d[1], d[2], dhs.typed_data(), dc_t.typed_data(), acts.typed_data(), cs.typed_data(),
           c0.typed_data(), w_h.typed_data(), dz->typed_data(), dh0->typed_data(), dc0->typed_data(),
           static_cast<int>(threads), &pool);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JdlLstmForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("threads")
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JdlLstmBackward, BackwardImpl,
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
                                  .Attr<int64_t>("threads")
                                  .Ctx<ffi::ThreadPool>());
