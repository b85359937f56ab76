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

// The outputs of one axis whose window lies wholly inside the input, where
// nothing is clipped: [ceil(p / s), floor((n - k + p) / s) + 1) within no.
Span full_windows(const window::WindowAxis& a, int64_t no) {
  const int64_t lo = std::min((a.p + a.s - 1) / a.s, no);
  const int64_t hi = a.n - a.k + a.p >= 0 ? std::min((a.n - a.k + a.p) / a.s + 1, no) : 0;
  return {lo, std::max(lo, hi)};
}

// The forward k x k pool, a row of outputs at a time: the columns whose
// windows are clipped go cell by cell; the rest run as one loop over the
// row per tap, which the compiler vectorises. Each output still takes its
// taps row by row, left to right (the running sum or the running maximum
// of the cell-by-cell walk), so the results are the same bits as the
// walk's and as the CUDA kernel's (tests/test_pool2d_emu.cpp).
// step(acc, v) folds tap v into acc; finish(acc, h) is the output.
template <class T, class Step, class Finish, class Cell>
void pool_rows(const T* xp, T* op, int64_t planes, const window::WindowAxis& ah, const window::WindowAxis& aw,
               int64_t Ho, int64_t Wo, T init, const Step& step, const Finish& finish, const Cell& cell) {
  const int64_t H = ah.n, W = aw.n, k = aw.k, s = aw.s;
  const Span inner = full_windows(aw, Wo);
  const bool parallel = planes > 1 && planes * H * W >= 32768;
#pragma omp parallel if (parallel)
  {
    std::vector<T> acc(static_cast<size_t>(inner.size()));
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* src = xp + pl * H * W;
      T* dst = op + pl * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const Span h = ah.span(oh);
        T* row = dst + oh * Wo;
        for (int64_t ow = 0; ow < inner.lo; ++ow) row[ow] = cell(src, h, aw.span(ow));
        std::fill(acc.begin(), acc.end(), init);
        T* a = acc.data();
        const int64_t n = inner.size();
        for (int64_t i = h.lo; i < h.hi; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const T* tap = src + i * W + inner.lo * s - aw.p + j;
            if (s == 1) {  // unit stride spelled out, for the vectoriser
              for (int64_t q = 0; q < n; ++q) a[q] = step(a[q], tap[q]);
            } else {
              for (int64_t q = 0; q < n; ++q) a[q] = step(a[q], tap[q * s]);
            }
          }
        for (int64_t q = 0; q < inner.size(); ++q) row[inner.lo + q] = finish(acc[static_cast<size_t>(q)], h);
        for (int64_t ow = inner.hi; ow < Wo; ++ow) row[ow] = cell(src, h, aw.span(ow));
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
  const auto count = [&](Span h, Span w) { return mode == PoolMode::AvgIncludePad ? k * k : h.size() * w.size(); };
  dispatch_float(x.dtype(), "pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const int64_t W = aw.n;
    if (mode == PoolMode::Max) {
      // The first NaN stays; otherwise a strictly greater tap replaces the
      // maximum: window::argmax's rule, as a running value.
      const auto step = [](T m, T v) { return m != m ? m : (v != v || v > m ? v : m); };
      pool_rows<T>(
          x.data<T>(), out.data<T>(), planes, ah, aw, Ho, Wo, -std::numeric_limits<T>::infinity(), step,
          [](T m, Span) { return m; }, [&](const T* src, Span h, Span w) { return src[window::argmax(src, W, h, w)]; });
    } else {
      const Span full{0, k};
      pool_rows<T>(
          x.data<T>(), out.data<T>(), planes, ah, aw, Ho, Wo, T(0), [](T acc, T v) { return acc + v; },
          [&](T acc, Span h) { return acc / static_cast<T>(count(h, full)); },
          [&](const T* src, Span h, Span w) {
            T acc = 0;
            for (int64_t i = h.lo; i < h.hi; ++i)
              for (int64_t j = w.lo; j < w.hi; ++j) acc += src[i * W + j];
            return acc / static_cast<T>(count(h, w));
          });
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
