// Bilinear resampling with half-pixel centers (align_corners=False), no
// antialiasing, matching PyTorch's upsample_bilinear2d: source coordinate
// (o + 0.5) * in/out - 0.5 clamped below at 0; the upper neighbour is
// clamped to the last pixel (kernels/window_math.h). Separable: the per-axis
// taps are computed once, then planes run in parallel. The backward scatters
// each output gradient to its four taps with the same weights.
#include <algorithm>
#include <vector>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/worth_parallel.h"
#include "sagan/kernels/window_math.h"

namespace sagan {

namespace {
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<double> l0, l1;
};

// Every output's taps along one axis, from kernels/window_math.h (the CUDA
// kernels compute each where they need it, with the same function).
Taps taps(int64_t in, int64_t out) {
  Taps t;
  const window::BilinearAxis axis{in, out};
  for (int64_t o = 0; o < out; ++o) {
    const window::BilinearTap tap = axis.tap(o);
    t.i0.push_back(tap.i0);
    t.i1.push_back(tap.i1);
    t.l0.push_back(tap.l0);
    t.l1.push_back(tap.l1);
  }
  return t;
}
}  // namespace

void CpuBackend::resize_bilinear(const Tensor& x, Tensor& out) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = out.size(2), Wo = out.size(3);
  const Taps th = taps(H, Ho), tw = taps(W, Wo);
  dispatch_float(x.dtype(), "resize_bilinear", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (planes > 1 && cpu::worth_parallel(out.numel()))
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* src = xp + pl * H * W;
      T* dst = op + pl * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const T* r0 = src + th.i0[oh] * W;
        const T* r1 = src + th.i1[oh] * W;
        const T a0 = static_cast<T>(th.l0[oh]), a1 = static_cast<T>(th.l1[oh]);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t j0 = tw.i0[ow], j1 = tw.i1[ow];
          const T b0 = static_cast<T>(tw.l0[ow]), b1 = static_cast<T>(tw.l1[ow]);
          dst[oh * Wo + ow] = a0 * (b0 * r0[j0] + b1 * r0[j1]) + a1 * (b0 * r1[j0] + b1 * r1[j1]);
        }
      }
    }
  });
}

void CpuBackend::resize_bilinear_backward(const Tensor& gy, Tensor& gx) {
  const int64_t planes = gx.size(0) * gx.size(1), H = gx.size(2), W = gx.size(3);
  const int64_t Ho = gy.size(2), Wo = gy.size(3);
  const Taps th = taps(H, Ho), tw = taps(W, Wo);
  dispatch_float(gx.dtype(), "resize_bilinear_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gp = gy.data<T>();
    T* op = gx.data<T>();
#pragma omp parallel for schedule(static) if (planes > 1 && cpu::worth_parallel(gy.numel()))
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* g = gp + pl * Ho * Wo;
      T* dst = op + pl * H * W;
      std::fill(dst, dst + H * W, T(0));
      for (int64_t oh = 0; oh < Ho; ++oh) {
        T* r0 = dst + th.i0[oh] * W;
        T* r1 = dst + th.i1[oh] * W;
        const T a0 = static_cast<T>(th.l0[oh]), a1 = static_cast<T>(th.l1[oh]);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t j0 = tw.i0[ow], j1 = tw.i1[ow];
          const T b0 = static_cast<T>(tw.l0[ow]), b1 = static_cast<T>(tw.l1[ow]);
          const T go = g[oh * Wo + ow];
          r0[j0] += a0 * b0 * go;
          r0[j1] += a0 * b1 * go;
          r1[j0] += a1 * b0 * go;
          r1[j1] += a1 * b1 * go;
        }
      }
    }
  });
}

}  // namespace sagan
