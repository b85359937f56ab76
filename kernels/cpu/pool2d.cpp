// General k x k pooling and adaptive average pooling on contiguous NCHW
// tensors, forward and backward; planes (one (n, c) image) run in parallel
// (each backward plane writes only its own gx plane).
#include <algorithm>
#include <limits>

#include "kernels/cpu/eval_kernels.h"

namespace sagan::cpu {

namespace {
bool parallel(int64_t planes, int64_t n) { return planes > 1 && n >= 32768; }
}  // namespace

void pool2d(const Tensor& x, Tensor& out, PoolMode mode, int64_t k, int64_t s, int64_t p) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = out.size(2), Wo = out.size(3);
  dispatch_float(x.dtype(), "pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (parallel(planes, x.numel()))
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* src = xp + pl * H * W;
      T* dst = op + pl * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        // The window clipped to the image; windows never pass the padding
        // (ceil_mode off), so the padded window is always k x k.
        const int64_t h0 = std::max<int64_t>(oh * s - p, 0), h1 = std::min(oh * s - p + k, H);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = std::max<int64_t>(ow * s - p, 0), w1 = std::min(ow * s - p + k, W);
          if (mode == PoolMode::Max) {
            T m = -std::numeric_limits<T>::infinity();
            for (int64_t i = h0; i < h1; ++i)
              for (int64_t j = w0; j < w1; ++j) {
                const T v = src[i * W + j];
                if (v > m || v != v) m = v;  // PyTorch's rule: NaN wins and stays
                if (m != m) break;
              }
            dst[oh * Wo + ow] = m;
          } else {
            T acc = 0;
            for (int64_t i = h0; i < h1; ++i)
              for (int64_t j = w0; j < w1; ++j) acc += src[i * W + j];
            const int64_t count = mode == PoolMode::AvgIncludePad ? k * k : (h1 - h0) * (w1 - w0);
            dst[oh * Wo + ow] = acc / static_cast<T>(count);
          }
        }
      }
    }
  });
}

void pool2d_backward(const Tensor& x, const Tensor& gy, Tensor& gx, PoolMode mode, int64_t k, int64_t s, int64_t p) {
  const int64_t planes = gx.size(0) * gx.size(1), H = gx.size(2), W = gx.size(3);
  const int64_t Ho = gy.size(2), Wo = gy.size(3);
  dispatch_float(gx.dtype(), "pool2d_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = mode == PoolMode::Max ? x.data<T>() : nullptr;
    const T* gp = gy.data<T>();
    T* op = gx.data<T>();
#pragma omp parallel for schedule(static) if (parallel(planes, gx.numel()))
    for (int64_t pl = 0; pl < planes; ++pl) {
      T* dst = op + pl * H * W;
      std::fill(dst, dst + H * W, T(0));
      const T* g = gp + pl * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t h0 = std::max<int64_t>(oh * s - p, 0), h1 = std::min(oh * s - p + k, H);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = std::max<int64_t>(ow * s - p, 0), w1 = std::min(ow * s - p + k, W);
          const T go = g[oh * Wo + ow];
          if (mode == PoolMode::Max) {
            // The forward's scan, remembering where the running maximum was set.
            const T* src = xp + pl * H * W;
            T m = -std::numeric_limits<T>::infinity();
            int64_t at = h0 * W + w0;
            for (int64_t i = h0; i < h1 && m == m; ++i)
              for (int64_t j = w0; j < w1; ++j) {
                const T v = src[i * W + j];
                if (v > m || v != v) {
                  m = v;
                  at = i * W + j;
                }
                if (m != m) break;
              }
            dst[at] += go;
          } else {
            const int64_t count = mode == PoolMode::AvgIncludePad ? k * k : (h1 - h0) * (w1 - w0);
            const T share = go / static_cast<T>(count);
            for (int64_t i = h0; i < h1; ++i)
              for (int64_t j = w0; j < w1; ++j) dst[i * W + j] += share;
          }
        }
      }
    }
  });
}

void adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = out.size(2), Wo = out.size(3);
  dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (parallel(planes, x.numel()))
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* src = xp + pl * H * W;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t h0 = oh * H / Ho, h1 = ((oh + 1) * H + Ho - 1) / Ho;
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = ow * W / Wo, w1 = ((ow + 1) * W + Wo - 1) / Wo;
          T acc = 0;
          for (int64_t i = h0; i < h1; ++i)
            for (int64_t j = w0; j < w1; ++j) acc += src[i * W + j];
          op[(pl * Ho + oh) * Wo + ow] = acc / static_cast<T>((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

void adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx) {
  const int64_t planes = gx.size(0) * gx.size(1), H = gx.size(2), W = gx.size(3);
  const int64_t Ho = gy.size(2), Wo = gy.size(3);
  dispatch_float(gx.dtype(), "adaptive_avg_pool2d_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gp = gy.data<T>();
    T* op = gx.data<T>();
#pragma omp parallel for schedule(static) if (parallel(planes, gx.numel()))
    for (int64_t pl = 0; pl < planes; ++pl) {
      T* dst = op + pl * H * W;
      std::fill(dst, dst + H * W, T(0));
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t h0 = oh * H / Ho, h1 = ((oh + 1) * H + Ho - 1) / Ho;
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = ow * W / Wo, w1 = ((ow + 1) * W + Wo - 1) / Wo;
          const T share = gp[(pl * Ho + oh) * Wo + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
          for (int64_t i = h0; i < h1; ++i)
            for (int64_t j = w0; j < w1; ++j) dst[i * W + j] += share;
        }
      }
    }
  });
}

}  // namespace sagan::cpu
