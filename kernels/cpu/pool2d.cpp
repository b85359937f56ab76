// General k x k pooling and adaptive average pooling on contiguous NCHW
// tensors, forward and backward. Every variant is a walk over output cells,
// each reading (forward) or writing (backward) a rectangle of its input
// plane: the pools differ only in where the rectangles lie (pool_span,
// adaptive_span) and in what is done there (average, or the maximum's cell).
// Planes (one (n, c) image) run in parallel; a backward plane writes only its
// own gx plane.
#include <algorithm>
#include <limits>

#include "kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {

struct Span {
  int64_t lo, hi;
  int64_t size() const { return hi - lo; }
};

// Window o of a k-wide pool with stride s and padding p over [0, n), clipped
// to the input; a window never lies wholly in the padding (pad <= k/2 and
// ceil_mode off), so the padded window is always k wide.
Span pool_span(int64_t o, int64_t k, int64_t s, int64_t p, int64_t n) {
  return {std::max<int64_t>(o * s - p, 0), std::min(o * s - p + k, n)};
}

// Cell o of an adaptive pool from n to no: [floor(o n / no), ceil((o+1) n / no)).
Span adaptive_span(int64_t o, int64_t n, int64_t no) { return {o * n / no, ((o + 1) * n + no - 1) / no}; }

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

// Offset in the plane of the rectangle's maximum under PyTorch's rule: the
// first maximum, and a NaN wins and stays (the first NaN).
template <class T>
int64_t argmax(const T* plane, int64_t W, Span h, Span w) {
  T m = -std::numeric_limits<T>::infinity();
  int64_t at = h.lo * W + w.lo;
  for (int64_t i = h.lo; i < h.hi; ++i)
    for (int64_t j = w.lo; j < w.hi; ++j) {
      const T v = plane[i * W + j];
      if (v != v) return i * W + j;
      if (v > m) {
        m = v;
        at = i * W + j;
      }
    }
  return at;
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
  auto rows = [&](int64_t o) { return pool_span(o, k, s, p, H); };
  auto cols = [&](int64_t o) { return pool_span(o, k, s, p, W); };
  auto count = [&](Span h, Span w) { return mode == PoolMode::AvgIncludePad ? k * k : h.size() * w.size(); };
  if (mode != PoolMode::Max) return average(x, out, "pool2d", rows, cols, count);
  const int64_t planes = x.size(0) * x.size(1), Ho = out.size(2), Wo = out.size(3);
  dispatch_float(x.dtype(), "pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_cell(planes, Ho, Wo, x.numel(), rows, cols, [&](int64_t pl, int64_t o, Span h, Span w) {
      const T* src = xp + pl * H * W;
      op[pl * Ho * Wo + o] = src[argmax(src, W, h, w)];
    });
  });
}

void CpuBackend::pool2d_backward(const Tensor& x, const Tensor& gy, Tensor& gx, Pool2dGeom g) {
  const PoolMode mode = g.mode;
  const int64_t k = g.kernel, s = g.stride, p = g.pad;
  const int64_t H = gx.size(2), W = gx.size(3);
  auto rows = [&](int64_t o) { return pool_span(o, k, s, p, H); };
  auto cols = [&](int64_t o) { return pool_span(o, k, s, p, W); };
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
      gxp[pl * H * W + argmax(xp + pl * H * W, W, h, w)] += gp[pl * Ho * Wo + o];
    });
  });
}

void CpuBackend::adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const int64_t H = x.size(2), W = x.size(3), Ho = out.size(2), Wo = out.size(3);
  average(
      x, out, "adaptive_avg_pool2d", [&](int64_t o) { return adaptive_span(o, H, Ho); },
      [&](int64_t o) { return adaptive_span(o, W, Wo); }, [](Span h, Span w) { return h.size() * w.size(); });
}

void CpuBackend::adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx) {
  const int64_t H = gx.size(2), W = gx.size(3), Ho = gy.size(2), Wo = gy.size(3);
  spread(
      gy, gx, "adaptive_avg_pool2d_backward", [&](int64_t o) { return adaptive_span(o, H, Ho); },
      [&](int64_t o) { return adaptive_span(o, W, Wo); }, [](Span h, Span w) { return h.size() * w.size(); });
}

}  // namespace sagan
