// Rectangular convolution on the CPU as one GEMM per chunk of images:
//   out_b (Co, P) = W (Co, K) @ cols_b (K, P),  K = Ci*kh*kw, P = Ho*Wo.
// Small feature maps (Inception's 17x17 and 8x8) are batched side by side so
// each GEMM is wide. With at least as many images as threads, chunks run in
// parallel with per-thread buffers; otherwise Eigen threads each GEMM.
// Forward only (core/ops_eval.h).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // Eigen AVX-512 false positive, as in conv2d.cpp
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/eval_kernels.h"

namespace sagan::cpu {

namespace {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapR = Eigen::Map<Mat<T>>;
template <class T>
using CMapR = Eigen::Map<const Mat<T>>;

struct Dims {
  int64_t B, Ci, H, W, Co, kh, kw, sh, sw, ph, pw, Ho, Wo;
  int64_t K() const { return Ci * kh * kw; }
  int64_t P() const { return Ho * Wo; }
};

// [lo, hi): output positions o whose input o*s - p + k lies in [0, n).
inline void valid_range(int64_t n, int64_t no, int64_t s, int64_t p, int64_t k, int64_t& lo, int64_t& hi) {
  lo = p - k <= 0 ? 0 : (p - k + s - 1) / s;
  hi = n - 1 + p - k < 0 ? 0 : (n - 1 + p - k) / s + 1;
  hi = std::min(hi, no);
  lo = std::min(lo, hi);
}

// cols (K, n*P): row (ci, i, j), column (b, oh, ow) = x[b0+b, ci, oh*sh-ph+i, ow*sw-pw+j] or 0.
template <class T>
void im2col(const Dims& d, const T* x, int64_t b0, int64_t n, T* cols) {
  const int64_t P = d.P(), ld = n * P;
  for (int64_t ci = 0; ci < d.Ci; ++ci)
    for (int64_t i = 0; i < d.kh; ++i)
      for (int64_t j = 0; j < d.kw; ++j) {
        int64_t lo, hi;
        valid_range(d.W, d.Wo, d.sw, d.pw, j, lo, hi);
        T* row = cols + ((ci * d.kh + i) * d.kw + j) * ld;
        for (int64_t b = 0; b < n; ++b) {
          const T* plane = x + ((b0 + b) * d.Ci + ci) * d.H * d.W;
          for (int64_t oh = 0; oh < d.Ho; ++oh) {
            T* dst = row + b * P + oh * d.Wo;
            const int64_t ih = oh * d.sh - d.ph + i;
            if (ih < 0 || ih >= d.H) {
              std::fill(dst, dst + d.Wo, T(0));
              continue;
            }
            const T* src = plane + ih * d.W - d.pw + j;
            std::fill(dst, dst + lo, T(0));
            if (d.sw == 1) std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(T));
            else
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * d.sw];
            std::fill(dst + hi, dst + d.Wo, T(0));
          }
        }
      }
}

constexpr int64_t kChunkCols = 1024;  // GEMM columns per chunk when images are small

}  // namespace

void conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                 Conv2dRectGeom g) {
  const Dims d{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), g.stride_h,
               g.stride_w, g.pad_h, g.pad_w, out.size(2), out.size(3)};
  const int64_t K = d.K(), P = d.P();
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  int64_t per = std::clamp<int64_t>((kChunkCols + P - 1) / P, 1, std::max<int64_t>(d.B, 1));
  if (threads > 1 && d.B >= threads) per = std::min(per, (d.B + threads - 1) / threads);
  else threads = 1;
  const int64_t chunks = (d.B + per - 1) / per;
  dispatch_float(x.dtype(), "conv2d_rect", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* bp = bias ? bias->data<T>() : nullptr;
    T* yp = out.data<T>();
    CMapR<T> W(w.data<T>(), d.Co, K);
    std::vector<std::vector<T>> cols(static_cast<size_t>(threads)), res(static_cast<size_t>(threads));
    auto run = [&](int64_t c, int tid) {
      const int64_t b0 = c * per, n = std::min(d.B, b0 + per) - b0;
      if (n <= 0) return;
      auto& cb = cols[static_cast<size_t>(tid)];
      auto& rb = res[static_cast<size_t>(tid)];
      cb.resize(static_cast<size_t>(K * n * P));
      rb.resize(static_cast<size_t>(d.Co * n * P));
      im2col(d, xp, b0, n, cb.data());
      MapR<T>(rb.data(), d.Co, n * P).noalias() = W * CMapR<T>(cb.data(), K, n * P);
      // res (Co, n, P) -> out (n, Co, P), adding the bias on the way.
      for (int64_t b = 0; b < n; ++b)
        for (int64_t co = 0; co < d.Co; ++co) {
          const T* src = rb.data() + (co * n + b) * P;
          T* dst = yp + ((b0 + b) * d.Co + co) * P;
          const T bc = bp ? bp[co] : T(0);
          for (int64_t q = 0; q < P; ++q) dst[q] = src[q] + bc;
        }
    };
    if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int64_t c = 0; c < chunks; ++c) run(c, omp_get_thread_num());
    } else {
      for (int64_t c = 0; c < chunks; ++c) run(c, 0);
    }
  });
}

}  // namespace sagan::cpu
