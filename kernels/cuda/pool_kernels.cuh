// The pooling and upsampling kernels of pool.cu, apart from their launches
// so that they also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_pool_emu.cpp runs them on the CPU emulator against the CPU
// backend.
//
// 2x2 average and max pooling (stride 2, odd sizes floor: the last row or
// column of an odd input is not pooled and gets a zero gradient) and nearest
// 2x upsampling, with backward. Tensors are (..., H, W) contiguous: every
// leading dim is a plane. One thread per output element (per input element
// for the backward kernels, which therefore write every gx element once,
// without atomics).
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// The running maximum is replaced by a larger value or by a NaN, so NaNs
// propagate (PyTorch's rule, and the CPU backend's).
template <class T>
__device__ __forceinline__ bool replaces(T v, T m) {
  return v > m || v != v;
}
template <class T>
__device__ __forceinline__ T max4(T a, T b, T c, T d) {
  T m = replaces(b, a) ? b : a;
  m = replaces(c, m) ? c : m;
  return replaces(d, m) ? d : m;
}

// out (P, Ho, Wo) from x (P, H, W).
template <class T, bool kMax>
__global__ void __launch_bounds__(kBlock)
    pool_kernel(const T* x, T* out, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t ow = i % Wo, rest = i / Wo, oh = rest % Ho, p = rest / Ho;
    const T* q = x + (p * H + 2 * oh) * W + 2 * ow;
    const T a = q[0], b = q[1], c = q[W], d = q[W + 1];
    if constexpr (kMax) {
      out[i] = max4(a, b, c, d);
    } else {
      out[i] = ((a + b) + (c + d)) * T(0.25);
    }
  }
}

// gx (P, H, W) from gy (P, Ho, Wo); for max, x picks the winner of each window.
template <class T, bool kMax>
__global__ void __launch_bounds__(kBlock)
    pool_backward_kernel(const T* x, const T* gy, T* gx, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W, rest = i / W, h = rest % H, p = rest / H;
    const int64_t oh = h >> 1, ow = w >> 1;
    if (oh >= Ho || ow >= Wo) {
      gx[i] = T(0);
      continue;
    }
    const T g = gy[(p * Ho + oh) * Wo + ow];
    if constexpr (kMax) {
      // The first cell (window order 0 1 / 2 3) equal to the maximum, or the
      // first NaN, takes the gradient: the lowest index on ties.
      const T* q = x + (p * H + 2 * oh) * W + 2 * ow;
      const T cell[4] = {q[0], q[1], q[W], q[W + 1]};
      const T m = max4(cell[0], cell[1], cell[2], cell[3]);
      int win = 3;
      for (int c = 2; c >= 0; --c)
        if (cell[c] == m || cell[c] != cell[c]) win = c;
      const int mine = static_cast<int>((h & 1) * 2 + (w & 1));
      gx[i] = mine == win ? g : T(0);
    } else {
      gx[i] = g * T(0.25);
    }
  }
}

// out (P, 2H, 2W) = x (P, H, W) repeated.
template <class T>
__global__ void __launch_bounds__(kBlock) upsample_kernel(const T* x, T* out, int64_t H, int64_t W, int64_t total) {
  const int64_t W2 = 2 * W, H2 = 2 * H;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W2, rest = i / W2, h = rest % H2, p = rest / H2;
    out[i] = x[(p * H + (h >> 1)) * W + (w >> 1)];
  }
}

// gx (P, H, W) = sum of the 2x2 block of gy (P, 2H, 2W).
template <class T>
__global__ void __launch_bounds__(kBlock)
    upsample_backward_kernel(const T* gy, T* gx, int64_t H, int64_t W, int64_t total) {
  const int64_t W2 = 2 * W;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t w = i % W, rest = i / W, h = rest % H, p = rest / H;
    const T* q = gy + (p * 2 * H + 2 * h) * W2 + 2 * w;
    gx[i] = (q[0] + q[1]) + (q[W2] + q[W2 + 1]);
  }
}

}  // namespace
}  // namespace sagan::cuda
