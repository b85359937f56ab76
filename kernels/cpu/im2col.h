// im2col and its adjoint col2im for the CPU convolutions: conv2d (square kernels, kernels/cpu/conv2d.cpp)
// and conv2d_rect (the evaluation networks' 1x7, 7x1, ..., kernels/cpu/conv2d_rect.cpp).
#pragma once
#include <algorithm>
#include <cstdint>

namespace sagan::cpu {

// Input plane (H, W), kernel (kh, kw), stride (sh, sw), zero padding (ph, pw),
// output plane (Ho, Wo).
struct ConvWindow {
  int64_t H, W, kh, kw, sh, sw, ph, pw, Ho, Wo;
  int64_t P() const { return Ho * Wo; }
};

// [lo, hi): output positions o whose input o*s - p + k lies in [0, n).
inline void valid_range(int64_t n, int64_t no, int64_t s, int64_t p, int64_t k, int64_t& lo, int64_t& hi) {
  lo = p - k <= 0 ? 0 : (p - k + s - 1) / s;
  hi = n - 1 + p - k < 0 ? 0 : (n - 1 + p - k) / s + 1;
  hi = std::min(hi, no);
  lo = std::min(lo, hi);
}

// cols (Ci*kh*kw, n*P): row (ci, i, j), column (b, oh, ow) =
// x[b0+b, ci, oh*sh - ph + i, ow*sw - pw + j], or 0 outside the image.
template <class T>
void im2col(const ConvWindow& d, int64_t Ci, const T* x, int64_t b0, int64_t n, T* cols) {
  const int64_t P = d.P(), ld = n * P;
  for (int64_t ci = 0; ci < Ci; ++ci)
    for (int64_t i = 0; i < d.kh; ++i)
      for (int64_t j = 0; j < d.kw; ++j) {
        int64_t lo, hi;
        valid_range(d.W, d.Wo, d.sw, d.pw, j, lo, hi);
        T* row = cols + ((ci * d.kh + i) * d.kw + j) * ld;
        for (int64_t b = 0; b < n; ++b) {
          const T* plane = x + ((b0 + b) * Ci + ci) * d.H * d.W;
          for (int64_t oh = 0; oh < d.Ho; ++oh) {
            T* dst = row + b * P + oh * d.Wo;
            const int64_t ih = oh * d.sh - d.ph + i;
            if (ih < 0 || ih >= d.H) {
              std::fill(dst, dst + d.Wo, T(0));
              continue;
            }
            const T* src = plane + ih * d.W - d.pw + j;
            // Plain loops: rows are short (8-32), a memcpy call costs more.
            for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
            if (d.sw == 1)
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow];
            else
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * d.sw];
            for (int64_t ow = hi; ow < d.Wo; ++ow) dst[ow] = T(0);
          }
        }
      }
}

// The adjoint of im2col: gx[b0+b] += cols scattered back. Accumulates, so
// the gx images must be zeroed first.
template <class T>
void col2im(const ConvWindow& d, int64_t Ci, const T* cols, int64_t b0, int64_t n, T* gx) {
  const int64_t P = d.P(), ld = n * P;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ci = 0; ci < Ci; ++ci) {
      T* plane = gx + ((b0 + b) * Ci + ci) * d.H * d.W;
      for (int64_t i = 0; i < d.kh; ++i)
        for (int64_t j = 0; j < d.kw; ++j) {
          int64_t lo, hi;
          valid_range(d.W, d.Wo, d.sw, d.pw, j, lo, hi);
          const T* row = cols + ((ci * d.kh + i) * d.kw + j) * ld + b * P;
          for (int64_t oh = 0; oh < d.Ho; ++oh) {
            const int64_t ih = oh * d.sh - d.ph + i;
            if (ih < 0 || ih >= d.H) continue;
            const T* src = row + oh * d.Wo;
            T* dst = plane + ih * d.W - d.pw + j;
            if (d.sw == 1)
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
            else
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * d.sw] += src[ow];
          }
        }
    }
}

}  // namespace sagan::cpu
