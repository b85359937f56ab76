// The general pooling kernels of pool2d.cu (k x k windows with stride and
// padding, and adaptive average pooling), apart from their launches so that
// they also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_pool2d_emu.cpp runs them on the CPU emulator against the CPU
// backend (kernels/cpu/pool2d.cpp), whose windows they share
// (kernels/window_math.h).
//
// Tensors are (P, H, W) planes, contiguous. The forward kernels run one
// thread per output cell over its input rectangle. The backward kernels run
// one thread per input cell and gather from every output window that covers
// it, in the CPU's order (output rows, then columns, ascending): each gx
// element is written once, without atomics, and equals the CPU's sum bit for
// bit where the arithmetic does.
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/window_math.h"

namespace sagan::cuda {
namespace {

using window::AdaptiveAxis;
using window::Span;
using window::WindowAxis;

// The divisor of an average: k * k when the padding counts (fixed > 0),
// otherwise the rectangle's area.
__device__ __forceinline__ int64_t divisor(int64_t fixed, Span h, Span w) {
  return fixed > 0 ? fixed : h.size() * w.size();
}

// out (P, Ho, Wo): the average (kMax false; divisor as above) or maximum of
// each output cell's rectangle of x (P, H, W).
template <class T, bool kMax, class Axis>
__global__ void __launch_bounds__(kBlock) pool2d_kernel(const T* x, T* out, Axis rows, Axis cols, int64_t fixed_count,
                                                        int64_t Ho, int64_t Wo, int64_t total) {
  const int64_t H = rows.n, W = cols.n;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t ow = i % Wo, rest = i / Wo, oh = rest % Ho, pl = rest / Ho;
    const T* src = x + pl * H * W;
    const Span h = rows.span(oh), w = cols.span(ow);
    if constexpr (kMax) {
      out[i] = src[window::argmax(src, W, h, w)];
    } else {
      T acc = 0;
      for (int64_t r = h.lo; r < h.hi; ++r)
        for (int64_t c = w.lo; c < w.hi; ++c) acc += src[r * W + c];
      out[i] = acc / static_cast<T>(divisor(fixed_count, h, w));
    }
  }
}

// gx (P, H, W) from gy (P, Ho, Wo): each input cell sums, over the windows
// that hold it, gy / divisor (average) or gy where the window's maximum is
// this cell (max; x is read for max only).
template <class T, bool kMax, class Axis>
__global__ void __launch_bounds__(kBlock)
    pool2d_backward_kernel(const T* x, const T* gy, T* gx, Axis rows, Axis cols, int64_t fixed_count, int64_t Ho,
                           int64_t Wo, int64_t total) {
  const int64_t H = rows.n, W = cols.n;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W, rest = i / W, h = rest % H, pl = rest / H;
    const Span oh_range = rows.covering(h, Ho), ow_range = cols.covering(w, Wo);
    const T* g = gy + pl * Ho * Wo;
    const int64_t mine = h * W + w;
    T acc = 0;
    for (int64_t oh = oh_range.lo; oh < oh_range.hi; ++oh) {
      const Span hs = rows.span(oh);
      if (!hs.holds(h)) continue;
      for (int64_t ow = ow_range.lo; ow < ow_range.hi; ++ow) {
        const Span ws = cols.span(ow);
        if (!ws.holds(w)) continue;
        if constexpr (kMax) {
          if (window::argmax(x + pl * H * W, W, hs, ws) == mine) acc += g[oh * Wo + ow];
        } else {
          acc += g[oh * Wo + ow] / static_cast<T>(divisor(fixed_count, hs, ws));
        }
      }
    }
    gx[i] = acc;
  }
}

}  // namespace
}  // namespace sagan::cuda
