// 2x2 average and max pooling with stride 2 (odd sizes floor: the last row or
// column is dropped and gets zero gradient) and nearest 2x upsampling, on
// contiguous NCHW tensors. Planes (one (n, c) image) run in parallel.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {
struct Geom {
  int64_t planes, h, w;  // the full-resolution side
};

Geom geom_of(const Tensor& big, const char* op) {
  SAGAN_CHECK(big.dim() == 4, "{}: expected an NCHW tensor, got shape {}", op, shape_str(big.shape()));
  return {big.shape()[0] * big.shape()[1], big.shape()[2], big.shape()[3]};
}

bool parallel(int64_t planes, int64_t n) { return planes > 1 && n >= 32768; }

// Offset within the window (0: top left, 1: top right, 2: bottom left, 3:
// bottom right) of its first maximum. NaN wins, as in PyTorch, so that NaNs
// propagate instead of vanishing.
template <class T>
int argmax4(const T* top, int64_t w) {
  const T v[4] = {top[0], top[1], top[w], top[w + 1]};
  int best = 0;
  for (int k = 1; k < 4; ++k)
    if (v[k] > v[best] || (std::isnan(v[k]) && !std::isnan(v[best]))) best = k;
  return best;
}

inline int64_t window_offset(int k, int64_t w) { return (k >> 1) * w + (k & 1); }
}  // namespace

void CpuBackend::avg_pool2x2(const Tensor& x, Tensor& out) {
  const Geom g = geom_of(x, "avg_pool2x2");
  const int64_t ho = g.h / 2, wo = g.w / 2;
  dispatch_float(x.dtype(), "avg_pool2x2", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (parallel(g.planes, x.numel()))
    for (int64_t p = 0; p < g.planes; ++p) {
      for (int64_t i = 0; i < ho; ++i) {
        const T* r0 = xp + (p * g.h + 2 * i) * g.w;
        const T* r1 = r0 + g.w;
        T* o = op + (p * ho + i) * wo;
        for (int64_t j = 0; j < wo; ++j)
          o[j] = T(0.25) * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
      }
    }
  });
}

void CpuBackend::avg_pool2x2_backward(const Tensor& gy, Tensor& gx) {
  const Geom g = geom_of(gx, "avg_pool2x2_backward");
  const int64_t ho = g.h / 2, wo = g.w / 2;
  dispatch_float(gx.dtype(), "avg_pool2x2_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gp = static_cast<const T*>(gy.raw_data());
    T* xp = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (parallel(g.planes, gx.numel()))
    for (int64_t p = 0; p < g.planes; ++p) {
      T* plane = xp + p * g.h * g.w;
      for (int64_t i = 0; i < g.h; ++i) {
        T* r = plane + i * g.w;
        if (i >= 2 * ho) {  // the dropped last row of an odd height
          for (int64_t j = 0; j < g.w; ++j) r[j] = T(0);
          continue;
        }
        const T* gr = gp + (p * ho + i / 2) * wo;
        for (int64_t j = 0; j < 2 * wo; ++j) r[j] = T(0.25) * gr[j / 2];
        for (int64_t j = 2 * wo; j < g.w; ++j) r[j] = T(0);
      }
    }
  });
}

void CpuBackend::max_pool2x2(const Tensor& x, Tensor& out) {
  const Geom g = geom_of(x, "max_pool2x2");
  const int64_t ho = g.h / 2, wo = g.w / 2;
  dispatch_float(x.dtype(), "max_pool2x2", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (parallel(g.planes, x.numel()))
    for (int64_t p = 0; p < g.planes; ++p) {
      for (int64_t i = 0; i < ho; ++i) {
        const T* r0 = xp + (p * g.h + 2 * i) * g.w;
        T* o = op + (p * ho + i) * wo;
        for (int64_t j = 0; j < wo; ++j) {
          const T* top = r0 + 2 * j;
          o[j] = top[window_offset(argmax4(top, g.w), g.w)];
        }
      }
    }
  });
}

void CpuBackend::max_pool2x2_backward(const Tensor& x, const Tensor& gy, Tensor& gx) {
  const Geom g = geom_of(x, "max_pool2x2_backward");
  const int64_t ho = g.h / 2, wo = g.w / 2;
  dispatch_float(x.dtype(), "max_pool2x2_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* gp = static_cast<const T*>(gy.raw_data());
    T* op = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (parallel(g.planes, x.numel()))
    for (int64_t p = 0; p < g.planes; ++p) {
      T* plane = op + p * g.h * g.w;
      for (int64_t i = 0; i < g.h * g.w; ++i) plane[i] = T(0);
      for (int64_t i = 0; i < ho; ++i) {
        const T* r0 = xp + (p * g.h + 2 * i) * g.w;
        const T* gr = gp + (p * ho + i) * wo;
        T* o = plane + 2 * i * g.w;
        for (int64_t j = 0; j < wo; ++j) o[2 * j + window_offset(argmax4(r0 + 2 * j, g.w), g.w)] = gr[j];
      }
    }
  });
}

void CpuBackend::upsample_nearest2x(const Tensor& x, Tensor& out) {
  const Geom g = geom_of(x, "upsample_nearest2x");
  const int64_t w2 = 2 * g.w;
  dispatch_float(x.dtype(), "upsample_nearest2x", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (parallel(g.planes, out.numel()))
    for (int64_t p = 0; p < g.planes; ++p) {
      for (int64_t i = 0; i < g.h; ++i) {
        const T* r = xp + (p * g.h + i) * g.w;
        T* o0 = op + (p * 2 * g.h + 2 * i) * w2;
        T* o1 = o0 + w2;
        for (int64_t j = 0; j < w2; ++j) o0[j] = r[j / 2];
        for (int64_t j = 0; j < w2; ++j) o1[j] = o0[j];
      }
    }
  });
}

void CpuBackend::upsample_nearest2x_backward(const Tensor& gy, Tensor& gx) {
  const Geom g = geom_of(gx, "upsample_nearest2x_backward");
  const int64_t w2 = 2 * g.w;
  dispatch_float(gx.dtype(), "upsample_nearest2x_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gp = static_cast<const T*>(gy.raw_data());
    T* xp = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (parallel(g.planes, gy.numel()))
    for (int64_t p = 0; p < g.planes; ++p) {
      for (int64_t i = 0; i < g.h; ++i) {
        const T* r0 = gp + (p * 2 * g.h + 2 * i) * w2;
        const T* r1 = r0 + w2;
        T* o = xp + (p * g.h + i) * g.w;
        for (int64_t j = 0; j < g.w; ++j) o[j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
      }
    }
  });
}

}  // namespace sagan
