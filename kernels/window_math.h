// Where pooling windows and bilinear taps lie, shared by the CPU and CUDA
// backends (host/device code), so that both read the same inputs with the
// same weights: kernels/cpu/pool2d.cpp and resize_bilinear.cpp, and
// kernels/cuda/pool2d_kernels.cuh and resize_bilinear_kernels.cuh, whose
// backwards also need the inverse (which outputs reach an input).
#pragma once
#include <cstdint>
#include <limits>

#include "sagan/kernels/host_device.h"

namespace sagan::window {

// Input rows (or columns) [lo, hi) of one output cell.
struct Span {
  int64_t lo, hi;
  SAGAN_HD int64_t size() const { return hi - lo; }
  SAGAN_HD bool holds(int64_t i) const { return lo <= i && i < hi; }
};

// One axis of a k-wide pool with stride s and padding p over n inputs
// (PyTorch's, ceil_mode off): window o is [o s - p, o s - p + k) clipped to
// the input. A window never lies wholly in the padding (p <= k / 2).
struct WindowAxis {
  int64_t k, s, p, n;
  SAGAN_HD Span span(int64_t o) const {
    const int64_t lo = o * s - p;
    return {lo > 0 ? lo : 0, lo + k < n ? lo + k : n};
  }
  // The outputs [lo, hi) among no whose window may hold input i: o s <= i + p
  // and o s >= i + p - k + 1.
  SAGAN_HD Span covering(int64_t i, int64_t no) const {
    const int64_t num = i + p - k + 1;
    const int64_t first = num > 0 ? (num + s - 1) / s : 0;
    const int64_t last = (i + p) / s + 1;
    return {first, last < no ? last : no};
  }
};

// One axis of an adaptive pool from n to no (PyTorch's adaptive_avg_pool2d):
// cell o is [floor(o n / no), ceil((o + 1) n / no)).
struct AdaptiveAxis {
  int64_t n, no;
  SAGAN_HD Span span(int64_t o) const { return {o * n / no, ((o + 1) * n + no - 1) / no}; }
  // Cells with floor(o n / no) <= i need o <= ((i + 1) no - 1) / n; cells
  // with ceil((o + 1) n / no) > i need o >= i no / n.
  SAGAN_HD Span covering(int64_t i, int64_t) const {
    const int64_t last = ((i + 1) * no - 1) / n + 1;
    return {i * no / n, last < no ? last : no};
  }
};

// Offset in an (H, W) plane of the rectangle's maximum under PyTorch's rule:
// the first maximum, and the first NaN wins.
template <class T>
SAGAN_HD int64_t argmax(const T* plane, int64_t W, Span h, Span w) {
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

// Output o's two inputs along one bilinear axis and their weights.
struct BilinearTap {
  int64_t i0, i1;
  double l0, l1;
};

// One axis resampled from n inputs to no outputs, half-pixel centers
// (align_corners=False), no antialiasing, as PyTorch's upsample_bilinear2d:
// source coordinate (o + 0.5) n / no - 0.5 clamped below at 0, the upper
// neighbour clamped to the last input; in double.
struct BilinearAxis {
  int64_t n, no;
  SAGAN_HD BilinearTap tap(int64_t o) const {
    const double scale = static_cast<double>(n) / static_cast<double>(no);
    double src = (static_cast<double>(o) + 0.5) * scale - 0.5;
    src = src > 0.0 ? src : 0.0;
    const int64_t f = static_cast<int64_t>(src);
    const int64_t i0 = f < n - 1 ? f : n - 1;
    const int64_t i1 = i0 + 1 < n - 1 ? i0 + 1 : n - 1;
    const double l1 = src - static_cast<double>(i0);
    return {i0, i1, 1.0 - l1, l1};
  }
  // The outputs [lo, hi) whose taps may reach input i: those whose (clamped)
  // source coordinate lies in [i - 1, i + 1), widened by one output each side
  // against rounding (the caller checks the taps themselves). Inputs 0 and 1
  // are also reached by every output clamped to 0.
  SAGAN_HD Span covering(int64_t i) const {
    const double inv = static_cast<double>(no) / static_cast<double>(n);
    const double lo = (static_cast<double>(i) - 0.5) * inv - 0.5, hi = (static_cast<double>(i) + 1.5) * inv - 0.5;
    const int64_t first = i > 1 && lo > 1.0 ? static_cast<int64_t>(lo) - 1 : 0;
    const int64_t last = static_cast<int64_t>(hi) + 2;
    return {first, last < no ? last : no};
  }
};

}  // namespace sagan::window
