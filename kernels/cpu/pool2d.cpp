// General k x k pooling and adaptive average pooling on contiguous NCHW
// tensors, forward and backward. Every variant is a walk over output cells,
// each reading (forward) or writing (backward) a rectangle of its input
// plane: the pools differ only in where the rectangles lie
// (kernels/window_math.h, shared with the CUDA kernels) and in what is done
// there (average, or the maximum's cell). The k x k forward, Inception's
// hot one, walks a row of outputs at a time instead (pool_rows), in the
// same order per output.
// Planes (one (n, c) image) run in parallel; a backward plane writes only its
// own gx plane.
#include <algorithm>
#include <limits>
#include <vector>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/worth_parallel.h"
#include "sagan/kernels/window_math.h"

namespace sagan {

namespace {

using window::Span;

// Calls cell(plane, output index, rows, cols) for every output cell; the
// spans come from rows(oh) and cols(ow).
template <class Rows, class Cols, class Cell>
void for_each_cell(int64_t planes, int64_t Ho, int64_t Wo, int64_t work, const Rows& rows, const Cols& cols,
                   const Cell& cell) {
#pragma omp parallel for schedule(static) if (planes > 1 && cpu::worth_parallel(work))
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

// The outputs [lo, hi) of one axis whose window holds input column
// o s - p + j, i.e. those where tap j of the window is not in the padding.
Span tap_outputs(const window::WindowAxis& a, int64_t j, int64_t no) {
  const int64_t first = a.p - j > 0 ? (a.p - j + a.s - 1) / a.s : 0;
  const int64_t last = a.n - 1 + a.p - j >= 0 ? (a.n - 1 + a.p - j) / a.s + 1 : 0;
  const int64_t lo = std::min(first, no);
  return {lo, std::max(lo, std::min(last, no))};
}

// The forward k x k pool, a row of outputs at a time: for each tap of the
// window (rows of the clipped span, then columns), one loop over the
// outputs whose window holds that tap, which the compiler vectorises. Each
// output so folds its taps row by row, left to right, skipping the
// padding: the order of the cell-by-cell walk (window::argmax, the CUDA
// kernel), so the results are the same bits as the walk's and the CUDA
// kernel's (tests/test_pool2d_emu.cpp). step(acc, v) folds tap v into acc;
// finish(acc, h, ow) is output ow of a row whose window rows are h.
template <class T, class Step, class Finish>
void pool_rows(const T* xp, T* op, int64_t planes, const window::WindowAxis& ah, const window::WindowAxis& aw,
               int64_t Ho, int64_t Wo, T init, const Step& step, const Finish& finish) {
  const int64_t H = ah.n, W = aw.n, k = aw.k, s = aw.s;
  std::vector<Span> taps(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) taps[static_cast<size_t>(j)] = tap_outputs(aw, j, Wo);
  const bool parallel = planes > 1 && cpu::worth_parallel(planes * H * W);
#pragma omp parallel if (parallel)
  {
    std::vector<T> acc(static_cast<size_t>(Wo));
    T* a = acc.data();
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* src = xp + pl * H * W;
      T* row = op + pl * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh, row += Wo) {
        const Span h = ah.span(oh);
        std::fill(acc.begin(), acc.end(), init);
        for (int64_t i = h.lo; i < h.hi; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const Span q = taps[static_cast<size_t>(j)];
            const T* tap = src + i * W - aw.p + j;  // tap of output ow: tap[ow * s]
            if (s == 1) {                           // unit stride spelled out, for the vectoriser
              for (int64_t ow = q.lo; ow < q.hi; ++ow) a[ow] = step(a[ow], tap[ow]);
            } else {
              for (int64_t ow = q.lo; ow < q.hi; ++ow) a[ow] = step(a[ow], tap[ow * s]);
            }
          }
        for (int64_t ow = 0; ow < Wo; ++ow) row[ow] = finish(a[ow], h, ow);
      }
    }
  }
}

}  // namespace

void CpuBackend::pool2d(const Tensor& x, Tensor& out, Pool2dGeom g) {
  const PoolMode mode = g.mode;
  const int64_t k = g.kernel, s = g.stride, p = g.pad;
  const window::WindowAxis ah{k, s, p, x.size(2)}, aw{k, s, p, x.size(3)};
  const int64_t planes = x.size(0) * x.size(1), Ho = out.size(2), Wo = out.size(3);
  dispatch_float(x.dtype(), "pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (mode == PoolMode::Max) {
      // The first NaN stays; otherwise a strictly greater tap replaces the
      // maximum: window::argmax's rule, as a running value.
      const auto step = [](T m, T v) { return m != m ? m : (v != v || v > m ? v : m); };
      pool_rows<T>(x.data<T>(), out.data<T>(), planes, ah, aw, Ho, Wo, -std::numeric_limits<T>::infinity(), step,
                   [](T m, Span, int64_t) { return m; });
    } else {
      // The divisor, k k or the window's cells in the input: a product of
      // small integers, exact as T whichever way it is formed, so the
      // same as the walk's.
      const bool include_pad = mode == PoolMode::AvgIncludePad;
      std::vector<T> cols(static_cast<size_t>(Wo));
      for (int64_t ow = 0; ow < Wo; ++ow)
        cols[static_cast<size_t>(ow)] = static_cast<T>(include_pad ? k : aw.span(ow).size());
      const T* c = cols.data();
      pool_rows<T>(
          x.data<T>(), out.data<T>(), planes, ah, aw, Ho, Wo, T(0), [](T acc, T v) { return acc + v; },
          [&](T acc, Span h, int64_t ow) { return acc / (static_cast<T>(include_pad ? k : h.size()) * c[ow]); });
    }
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
