// Row softmax kernels (one block per row of n contiguous elements), shared by
// reduce.cu (softmax, softmax_backward) and attention.cu, which also wants the
// log-sum-exp of each row, and log_softmax.cu (log_softmax and its backward,
// whose row sums accumulate in double as kernels/cpu/log_softmax.cpp's do).
// In place (y == x) is allowed: every read of a row finishes (block
// reduction barrier) before the row is written.
#pragma once
#include <cmath>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {

// A row's maximum m and sum(exp(x - m)), the sum accumulated in Acc; every
// thread of the block calls it and gets both (block reductions over
// `smem` and `acc_smem`, 32 values each).
template <class T, class Acc>
__device__ void row_max_sum_exp(const T* xr, int64_t n, T* smem, Acc* acc_smem, T& m, Acc& s) {
  m = -std::numeric_limits<T>::infinity();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = xr[i] > m ? xr[i] : m;
  m = block_max(m, smem);
  s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += std::exp(static_cast<Acc>(xr[i] - m));
  s = block_sum(s, acc_smem);
}

// y = softmax(x) per row; lse[row] = log(sum(exp(x))) when lse != nullptr.
template <class T>
__global__ void __launch_bounds__(kBlock) softmax_rows_kernel(const T* x, T* y, T* lse, int64_t rows, int64_t n) {
  __shared__ T smem[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    T m, s;
    row_max_sum_exp(xr, n, smem, smem, m, s);
    const T inv = T(1) / s;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = std::exp(xr[i] - m) * inv;
    if (lse != nullptr && threadIdx.x == 0) lse[row] = m + std::log(s);
  }
}

// gx = y * (gy - sum(gy * y)) per row.
template <class T>
__global__ void __launch_bounds__(kBlock)
    softmax_backward_rows_kernel(const T* y, const T* gy, T* gx, int64_t rows, int64_t n) {
  __shared__ T smem[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* yr = y + row * n;
    const T* gr = gy + row * n;
    T* xr = gx + row * n;
    T dot = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dot += yr[i] * gr[i];
    dot = block_sum(dot, smem);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) xr[i] = yr[i] * (gr[i] - dot);
  }
}

// y = x - (max + log(sum(exp(x - max)))) per row, the sum in double.
template <class T>
__global__ void __launch_bounds__(kBlock) log_softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t n) {
  __shared__ T smem[32];
  __shared__ double dsmem[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    T m;
    double s;
    row_max_sum_exp(xr, n, smem, dsmem, m, s);
    const T shift = m + static_cast<T>(std::log(s));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] - shift;
  }
}

// gx = gy - exp(y) * sum(gy) per row, y = log_softmax(x), the sum in double.
template <class T>
__global__ void __launch_bounds__(kBlock)
    log_softmax_backward_rows_kernel(const T* y, const T* gy, T* gx, int64_t rows, int64_t n) {
  __shared__ double dsmem[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* yr = y + row * n;
    const T* gr = gy + row * n;
    T* xr = gx + row * n;
    double total = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) total += static_cast<double>(gr[i]);
    const T sum = static_cast<T>(block_sum(total, dsmem));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) xr[i] = gr[i] - std::exp(yr[i]) * sum;
  }
}

}  // namespace sagan::cuda
