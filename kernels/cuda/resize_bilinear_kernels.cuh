// The bilinear resampling kernels of resize_bilinear.cu, apart from their
// launches so that they also compile as host code after
// tests/cuda/emu/cuda_emu.h: tests/test_resize_bilinear_emu.cpp runs them on
// the CPU emulator against the CPU backend (kernels/cpu/resize_bilinear.cpp),
// whose taps they share (kernels/window_math.h).
//
// Half-pixel centers (align_corners=False), no antialiasing: output o of an
// axis reads inputs i0 and i1 at source coordinate (o + 0.5) in/out - 0.5,
// clamped below at 0, with i1 clamped to the last input. Tensors are
// (P, H, W) planes, contiguous. The forward runs a thread per output cell;
// the backward a thread per input cell, gathering from the outputs whose
// taps reach it in the CPU's scatter order, so no atomics and each gx
// element written once. The same order, not the same bits: nvcc may fuse
// the weighted sums' multiply-adds where g++ does not (the parity tests'
// tolerances allow for it).
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/window_math.h"

namespace sagan::cuda {
namespace {

using window::BilinearAxis;
using window::BilinearTap;
using window::Span;

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
    const Span oh_range = rows.covering(h), ow_range = cols.covering(w);
    const T* g = gy + pl * Ho * Wo;
    T acc = 0;
    for (int64_t oh = oh_range.lo; oh < oh_range.hi; ++oh) {
      const BilinearTap th = rows.tap(oh);
      if (th.i0 != h && th.i1 != h) continue;
      const T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1);
      for (int64_t ow = ow_range.lo; ow < ow_range.hi; ++ow) {
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
