// The bilinear resampling kernels of resize_bilinear.cu, apart from their
// launches so that they also compile as host code after
// tests/cuda/emu/cuda_emu.h: tests/test_resize_bilinear_emu.cpp runs them on
// the CPU emulator against the CPU backend (kernels/cpu/resize_bilinear.cpp),
// whose taps they compute the same way, in double.
//
// Half-pixel centers (align_corners=False), no antialiasing: output o of an
// axis reads inputs i0 and i1 at source coordinate (o + 0.5) in/out - 0.5,
// clamped below at 0, with i1 clamped to the last input. Tensors are
// (P, H, W) planes, contiguous. The forward runs a thread per output cell;
// the backward a thread per input cell, gathering from the outputs whose
// taps reach it in the CPU's scatter order, so no atomics and each gx
// element written once.
#pragma once
#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// Output o's two inputs along one axis and their weights.
struct BilinearTap {
  int64_t i0, i1;
  double l0, l1;
};

// Outputs [first, last) of one axis.
struct OutputRange {
  int64_t first, last;
};

// One axis resampled from n inputs to no outputs.
struct BilinearAxis {
  int64_t n, no;
  __device__ __forceinline__ double scale() const { return static_cast<double>(n) / static_cast<double>(no); }
  __device__ __forceinline__ BilinearTap tap(int64_t o) const {
    double src = (static_cast<double>(o) + 0.5) * scale() - 0.5;
    src = src > 0.0 ? src : 0.0;
    const int64_t f = static_cast<int64_t>(src);
    const int64_t i0 = f < n - 1 ? f : n - 1;
    const int64_t i1 = i0 + 1 < n - 1 ? i0 + 1 : n - 1;
    const double l1 = src - static_cast<double>(i0);
    return {i0, i1, 1.0 - l1, l1};
  }
  // Outputs [first, last) whose taps may reach input i: those whose
  // (clamped) source coordinate lies in [i - 1, i + 1), widened by one output
  // each side against rounding (the caller checks the taps themselves).
  // Inputs 0 and 1 are also reached by every output clamped to 0.
  __device__ __forceinline__ OutputRange covering(int64_t i) const {
    const double inv = static_cast<double>(no) / static_cast<double>(n);
    const double lo = (static_cast<double>(i) - 0.5) * inv - 0.5, hi = (static_cast<double>(i) + 1.5) * inv - 0.5;
    const int64_t first = i > 1 && lo > 1.0 ? static_cast<int64_t>(lo) - 1 : 0;
    const int64_t last = static_cast<int64_t>(hi) + 2;
    return {first, last < no ? last : no};
  }
};

// out (P, Ho, Wo) from x (P, H, W).
template <class T>
__global__ void __launch_bounds__(kBlock)
    resize_bilinear_kernel(const T* x, T* out, BilinearAxis rows, BilinearAxis cols, int64_t total) {
  const int64_t H = rows.n, W = cols.n, Ho = rows.no, Wo = cols.no;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t ow = i % Wo, rest = i / Wo, oh = rest % Ho, pl = rest / Ho;
    const BilinearTap th = rows.tap(oh), tw = cols.tap(ow);
    const T* r0 = x + (pl * H + th.i0) * W;
    const T* r1 = x + (pl * H + th.i1) * W;
    const T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1);
    const T b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
    out[i] = a0 * (b0 * r0[tw.i0] + b1 * r0[tw.i1]) + a1 * (b0 * r1[tw.i0] + b1 * r1[tw.i1]);
  }
}

// gx (P, H, W) from gy (P, Ho, Wo): input (h, w) sums a * b * gy over the
// outputs whose row tap a and column tap b land on it, output by output in
// the CPU's order, and within one output as the CPU adds its four taps.
template <class T>
__global__ void __launch_bounds__(kBlock)
    resize_bilinear_backward_kernel(const T* gy, T* gx, BilinearAxis rows, BilinearAxis cols, int64_t total) {
  const int64_t H = rows.n, W = cols.n, Ho = rows.no, Wo = cols.no;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W, rest = i / W, h = rest % H, pl = rest / H;
    const OutputRange oh_range = rows.covering(h), ow_range = cols.covering(w);
    const T* g = gy + pl * Ho * Wo;
    T acc = 0;
    for (int64_t oh = oh_range.first; oh < oh_range.last; ++oh) {
      const BilinearTap th = rows.tap(oh);
      if (th.i0 != h && th.i1 != h) continue;
      const T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1);
      for (int64_t ow = ow_range.first; ow < ow_range.last; ++ow) {
        const BilinearTap tw = cols.tap(ow);
        if (tw.i0 != w && tw.i1 != w) continue;
        const T b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
        const T go = g[oh * Wo + ow];
        if (th.i0 == h && tw.i0 == w) acc += a0 * b0 * go;
        if (th.i0 == h && tw.i1 == w) acc += a0 * b1 * go;
        if (th.i1 == h && tw.i0 == w) acc += a1 * b0 * go;
        if (th.i1 == h && tw.i1 == w) acc += a1 * b1 * go;
      }
    }
    gx[i] = acc;
  }
}

}  // namespace
}  // namespace sagan::cuda
