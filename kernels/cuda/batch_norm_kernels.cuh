// The batch-norm kernels of batch_norm.cu, apart from their launches so that
// they also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_batch_norm_emu.cpp runs them on the CPU emulator against the
// CPU backend.
//
// x (B, C, ...) contiguous, statistics per channel over the batch and
// spatial positions. One block per channel walks its B * HW elements (two
// passes for the statistics: mean, then the biased variance around it,
// which is stable); sums accumulate in double.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// Element j of channel c, j in [0, B * hw).
__device__ __forceinline__ int64_t channel_elem(int64_t j, int64_t c, int64_t channels, int64_t hw) {
  const int64_t b = j / hw;
  return (b * channels + c) * hw + (j - b * hw);
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_stats_kernel(const T* x, T* mean, T* invstd, int64_t batch, int64_t channels, int64_t hw, double eps) {
  __shared__ double smem[32];
  const int64_t n = batch * hw;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    double s = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(x[channel_elem(j, c, channels, hw)]);
    const double mu = block_sum(s, smem) / static_cast<double>(n);
    double q = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double d = static_cast<double>(x[channel_elem(j, c, channels, hw)]) - mu;
      q += d * d;
    }
    const double var = block_sum(q, smem) / static_cast<double>(n);
    if (threadIdx.x == 0) {
      mean[c] = static_cast<T>(mu);
      invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_normalize_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride, T* out,
                        int64_t channels, int64_t hw, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t c = (i / hw) % channels;
    out[i] = (x[i] - mean[c * mean_stride]) * invstd[c * invstd_stride];
  }
}

// gx = invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), xhat = (x - mean) * invstd.
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_backward_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride,
                       const T* gy, T* gx, int64_t batch, int64_t channels, int64_t hw) {
  __shared__ double smem[32];
  const int64_t n = batch * hw;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const double mu = static_cast<double>(mean[c * mean_stride]);
    const double is = static_cast<double>(invstd[c * invstd_stride]);
    double sg = 0, sgx = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const int64_t e = channel_elem(j, c, channels, hw);
      const double g = static_cast<double>(gy[e]);
      sg += g;
      sgx += g * (static_cast<double>(x[e]) - mu) * is;
    }
    const double mg = block_sum(sg, smem) / static_cast<double>(n);
    const double mgx = block_sum(sgx, smem) / static_cast<double>(n);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const int64_t e = channel_elem(j, c, channels, hw);
      const double xhat = (static_cast<double>(x[e]) - mu) * is;
      gx[e] = static_cast<T>(is * (static_cast<double>(gy[e]) - mg - xhat * mgx));
    }
  }
}
}  // namespace
}  // namespace sagan::cuda
