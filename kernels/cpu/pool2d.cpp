// General k x k pooling and adaptive average pooling on contiguous NCHW
// tensors, forward and backward. Every variant is a walk over output cells,
// each reading (forward) or writing (backward) a rectangle of its input
// plane: the pools differ only in where the rectangles lie
// (kernels/window_math.h, shared with the CUDA kernels) and in what is done
// there (average, or the maximum's cell).
// Planes (one (n, c) image) run in parallel; a backward plane writes only its
// own gx plane.
#include <algorithm>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/window_math.h"

namespace sagan {

namespace {

using window::Span;

// Calls cell(plane, output index, rows, cols) for every output cell; the
// spans come from rows(oh) and cols(ow).
template <class Rows, class Cols, class Cell>
void for_each_cell(int64_t planes, int64_t Ho, int64_t Wo, int64_t work, const Rows& rows, const Cols& cols,
                   const Cell& cell) {
#pragma omp parallel for schedule(static) if (planes > 1 && work >= 32768)
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const Span h = rows(oh);
      for (int64_t ow = 0; ow < Wo; ++ow) cell(pl, oh * Wo + ow, h, cols(ow));
    }
}

// Average pooling of x into out over the rectangles; count(h, w) is the divisor.
template <class Rows, class Cols, class Count>
void average(const Tensor& x, Tensor& out, const char* op, const Rows& rows, const Cols& cols, const Count& count) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), Ho = out.size(2), Wo = out.size(3);
  dispatch_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* op_ = out.data<T>();
    for_each_cell(planes, Ho, Wo, x.numel(), rows, cols, [&](int64_t pl, int64_t o, Span h, Span w) {
      const T* src = xp + pl * H * W;
      T acc = 0;
      for (int64_t i = h.lo; i < h.hi; ++i)
        for (int64_t j = w.lo; j < w.hi; ++j) acc += src[i * W + j];
      op_[pl * Ho * Wo + o] = acc / static_cast<T>(count(h, w));
    });
  });
}

// The adjoint of average: each output gradient spread evenly over its rectangle.
template <class Rows, class Cols, class Count>
void spread(const Tensor& gy, Tensor& gx, const char* op, const Rows& rows, const Cols& cols, const Count& count) {
  const int64_t planes = gx.size(0) * gx.size(1), H = gx.size(2), W = gx.size(3), Ho = gy.size(2), Wo = gy.size(3);
  dispatch_float(gx.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gp = gy.data<T>();
    T* gxp = gx.data<T>();
    std::fill(gxp, gxp + gx.numel(), T(0));
    for_each_cell(planes, Ho, Wo, gx.numel(), rows, cols, [&](int64_t pl, int64_t o, Span h, Span w) {
      T* dst = gxp + pl * H * W;
      const T share = gp[pl * Ho * Wo + o] / static_cast<T>(count(h, w));
      for (int64_t i = h.lo; i < h.hi; ++i)
        for (int64_t j = w.lo; j < w.hi; ++j) dst[i * W + j] += share;
    });
  });
}

}  // namespace

void CpuBackend::pool2d(const Tensor& x, Tensor& out, Pool2dGeom g) {
  const PoolMode mode = g.mode;
  const int64_t k = g.kernel, s = g.stride, p = g.pad;
  const int64_t H = x.size(2), W = x.size(3);
  auto rows = [&](int64_t o) { return window::WindowAxis{k, s, p, H}.span(o); };
  auto cols = [&](int64_t o) { return window::WindowAxis{k, s, p, W}.span(o); };
  auto count = [&](Span h, Span w) { return mode == PoolMode::AvgIncludePad ? k * k : h.size() * w.size(); };
  if (mode != PoolMode::Max) return average(x, out, "pool2d", rows, cols, count);
  const int64_t planes = x.size(0) * x.size(1), Ho = out.size(2), Wo = out.size(3);
  dispatch_float(x.dtype(), "pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_cell(planes, Ho, Wo, x.numel(), rows, cols, [&](int64_t pl, int64_t o, Span h, Span w) {
      const T* src = xp + pl * H * W;
      op[pl * Ho * Wo + o] = src[window::argmax(src, W, h, w)];
    });
  });
}

void CpuBackend::pool2d_backward(const Tensor& x, const Tensor& gy, Tensor& gx, Pool2dGeom g) {
  const PoolMode mode = g.mode;
  const int64_t k = g.kernel, s = g.stride, p = g.pad;
  const int64_t H = gx.size(2), W = gx.size(3);
  auto rows = [&](int64_t o) { return window::WindowAxis{k, s, p, H}.span(o); };
  auto cols = [&](int64_t o) { return window::WindowAxis{k, s, p, W}.span(o); };
  auto count = [&](Span h, Span w) { return mode == PoolMode::AvgIncludePad ? k * k : h.size() * w.size(); };
  if (mode != PoolMode::Max) return spread(gy, gx, "pool2d_backward", rows, cols, count);
  const int64_t planes = gx.size(0) * gx.size(1), Ho = gy.size(2), Wo = gy.size(3);
  dispatch_float(gx.dtype(), "pool2d_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* gp = gy.data<T>();
    T* gxp = gx.data<T>();
    std::fill(gxp, gxp + gx.numel(), T(0));
    // The gradient goes to the cell the forward took its value from.
    for_each_cell(planes, Ho, Wo, gx.numel(), rows, cols, [&](int64_t pl, int64_t o, Span h, Span w) {
      gxp[pl * H * W + window::argmax(xp + pl * H * W, W, h, w)] += gp[pl * Ho * Wo + o];
    });
  });
}

void CpuBackend::adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const int64_t H = x.size(2), W = x.size(3), Ho = out.size(2), Wo = out.size(3);
  average(
      x, out, "adaptive_avg_pool2d",
      [&](int64_t o) {
        return window::AdaptiveAxis{H, Ho}.span(o);
      },
      [&](int64_t o) {
        return window::AdaptiveAxis{W, Wo}.span(o);
      },
      [](Span h, Span w) { return h.size() * w.size(); });
}

void CpuBackend::adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx) {
  const int64_t H = gx.size(2), W = gx.size(3), Ho = gy.size(2), Wo = gy.size(3);
  spread(
      gy, gx, "adaptive_avg_pool2d_backward",
      [&](int64_t o) {
        return window::AdaptiveAxis{H, Ho}.span(o);
      },
      [&](int64_t o) {
        return window::AdaptiveAxis{W, Wo}.span(o);
      },
      [](Span h, Span w) { return h.size() * w.size(); });
}

}  // namespace sagan
