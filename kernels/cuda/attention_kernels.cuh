// The unfused attention path's own kernels (attention.cu; the GEMMs are
// cuBLAS's and the row softmax is softmax.cuh's), apart from their launches
// so that they also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_attention_unfused_emu.cpp runs them on the CPU emulator.
#pragma once
#include <cmath>
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// P = exp(S - lse[row]) in place over rows of n.
template <class T>
__global__ void __launch_bounds__(kBlock) exp_minus_lse_kernel(T* s, const T* lse, int64_t n, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) s[e] = std::exp(s[e] - lse[e / n]);
}

// d[row] = sum_j a[row, j] * b[row, j], one warp per row.
template <class T>
__global__ void __launch_bounds__(kBlock) row_dot_kernel(const T* a, const T* b, T* d, int64_t rows, int64_t n) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = thread_count() >> 5;
  for (int64_t r = thread_index() >> 5; r < rows; r += warps) {
    T acc = 0;
    for (int64_t j = lane; j < n; j += 32) acc += a[r * n + j] * b[r * n + j];
    acc = warp_sum(acc);
    if (lane == 0) d[r] = acc;
  }
}

// dP <- P * (dP - D[row]) in place.
template <class T>
__global__ void __launch_bounds__(kBlock) softmax_grad_kernel(const T* p, T* dp, const T* d, int64_t n, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) dp[e] = p[e] * (dp[e] - d[e / n]);
}

}  // namespace
}  // namespace sagan::cuda
