// 2x2 average and max pooling with stride 2 (odd sizes floor: the last row or
// column is dropped and gets zero gradient) and nearest 2x upsampling, on
// contiguous NCHW tensors. Planes (one (n, c) image) run in parallel.
#include <cstring>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

namespace {
struct Geom {
  int64_t planes, h, w;  // the full-resolution side
};

Geom geom_of(const Tensor& big, const char* op) {
  SAGAN_CHECK(big.dim() == 4, "{}: expected an NCHW tensor, got shape {}", op, shape_str(big.shape()));
  return {big.shape()[0] * big.shape()[1], big.shape()[2], big.shape()[3]};
}

bool parallel(int64_t planes, int64_t n) { return planes > 1 && cpu::worth_parallel(n); }

// A running maximum is replaced by a larger value or by a NaN (PyTorch's
// rule), so NaNs propagate. Written as selects so the window loops vectorise.
template <class T>
inline bool replaces(T v, T m) {
  return (v > m) | (v != v);
}

template <class T>
inline T max4(T v0, T v1, T v2, T v3) {
  T m = replaces(v1, v0) ? v1 : v0;
  m = replaces(v2, m) ? v2 : m;
  return replaces(v3, m) ? v3 : m;
}

// v is the window's maximum m. m is NaN exactly when the window holds a NaN,
// and then every NaN cell counts as the maximum.
template <class T>
inline bool is_max(T v, T m) {
  return (v == m) | (v != v);
}

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
        for (int64_t j = 0; j < wo; ++j) o[j] = T(0.25) * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
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
      for (int64_t i = 0; i < ho; ++i) {
        const T* gr = gp + (p * ho + i) * wo;
        T* r0 = plane + 2 * i * g.w;
        for (int64_t j = 0; j < wo; ++j) r0[2 * j] = r0[2 * j + 1] = T(0.25) * gr[j];
        if (g.w > 2 * wo) r0[g.w - 1] = T(0);  // the dropped last column
        std::memcpy(r0 + g.w, r0, static_cast<size_t>(g.w) * sizeof(T));
      }
      for (int64_t i = 2 * ho * g.w; i < g.h * g.w; ++i) plane[i] = T(0);  // the dropped last row
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
        for (int64_t j = 0; j < wo; ++j) o[j] = max4(r0[2 * j], r0[2 * j + 1], r0[g.w + 2 * j], r0[g.w + 2 * j + 1]);
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
      // Every element of gx is written once: the window's four cells by
      // select (vectorisable), then the dropped last column and row as zeros.
      // The gradient goes to the first cell equal to the window's maximum,
      // which is the lowest-index maximum on ties (and the first NaN).
      for (int64_t i = 0; i < ho; ++i) {
        const T* r0 = xp + (p * g.h + 2 * i) * g.w;
        const T* r1 = r0 + g.w;
        const T* gr = gp + (p * ho + i) * wo;
        T* o0 = plane + 2 * i * g.w;
        T* o1 = o0 + g.w;
        for (int64_t j = 0; j < wo; ++j) {
          const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
          const T m = max4(a, b, c, d);
          // `left` is the gradient not yet given to an earlier cell.
          T left = gr[j];
          o0[2 * j] = is_max(a, m) ? left : T(0);
          left = is_max(a, m) ? T(0) : left;
          o0[2 * j + 1] = is_max(b, m) ? left : T(0);
          left = is_max(b, m) ? T(0) : left;
          o1[2 * j] = is_max(c, m) ? left : T(0);
          left = is_max(c, m) ? T(0) : left;
          o1[2 * j + 1] = left;
        }
        if (g.w > 2 * wo) o0[g.w - 1] = o1[g.w - 1] = T(0);
      }
      for (int64_t i = 2 * ho * g.w; i < g.h * g.w; ++i) plane[i] = T(0);
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
        for (int64_t j = 0; j < g.w; ++j) o0[2 * j] = o0[2 * j + 1] = r[j];
        std::memcpy(o1, o0, static_cast<size_t>(w2) * sizeof(T));
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
