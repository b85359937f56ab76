// The general pooling kernels of pool2d.cu (k x k windows with stride and
// padding, and adaptive average pooling), apart from their launches so that
// they also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_pool2d_emu.cpp runs them on the CPU emulator against the CPU
// backend (kernels/cpu/pool2d.cpp), whose semantics they share.
//
// Tensors are (P, H, W) planes, contiguous. The forward kernels run one
// thread per output cell over its input rectangle. The backward kernels run
// one thread per input cell and gather from every output window that covers
// it, in the CPU's order (output rows, then columns, ascending): each gx
// element is written once, without atomics, and equals the CPU's sum bit for
// bit where the arithmetic does.
#pragma once
#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// Input rows (or columns) [lo, hi) of one output cell.
struct Span {
  int64_t lo, hi;
  __device__ __forceinline__ int64_t size() const { return hi - lo; }
  __device__ __forceinline__ bool holds(int64_t i) const { return lo <= i && i < hi; }
};

// One axis of a k-wide pool with stride s and padding p over n inputs: window
// o is [o s - p, o s - p + k) clipped to the input (kernels/cpu/pool2d.cpp).
struct WindowAxis {
  int64_t k, s, p, n;
  __device__ __forceinline__ Span span(int64_t o) const {
    const int64_t lo = o * s - p;
    return {lo > 0 ? lo : 0, lo + k < n ? lo + k : n};
  }
  // The outputs [first, last) whose window may hold input i, among no.
  __device__ __forceinline__ Span covering(int64_t i, int64_t no) const {
    const int64_t num = i + p - k + 1;  // o s >= i + p - k + 1
    const int64_t first = num > 0 ? (num + s - 1) / s : 0;
    const int64_t last = (i + p) / s + 1;  // o s <= i + p
    return {first, last < no ? last : no};
  }
};

// One axis of an adaptive pool from n to no: cell o is
// [floor(o n / no), ceil((o + 1) n / no)).
struct AdaptiveAxis {
  int64_t n, no;
  __device__ __forceinline__ Span span(int64_t o) const { return {o * n / no, ((o + 1) * n + no - 1) / no}; }
  // Cells with floor(o n / no) <= i need o <= ((i + 1) no - 1) / n; cells
  // with ceil((o + 1) n / no) > i need o >= i no / n.
  __device__ __forceinline__ Span covering(int64_t i, int64_t) const {
    const int64_t last = ((i + 1) * no - 1) / n + 1;
    return {i * no / n, last < no ? last : no};
  }
};

// The divisor of an average: k * k when the padding counts (fixed > 0),
// otherwise the rectangle's area.
__device__ __forceinline__ int64_t divisor(int64_t fixed, Span h, Span w) {
  return fixed > 0 ? fixed : h.size() * w.size();
}

// Offset in the plane of the rectangle's maximum under PyTorch's rule: the
// first maximum, and the first NaN wins.
template <class T>
__device__ __forceinline__ int64_t window_argmax(const T* plane, int64_t W, Span h, Span w) {
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
      out[i] = src[window_argmax(src, W, h, w)];
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
          if (window_argmax(x + pl * H * W, W, hs, ws) == mine) acc += g[oh * Wo + ow];
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
