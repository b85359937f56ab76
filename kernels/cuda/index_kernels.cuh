// The index kernels of index.cu, apart from their launches so that they
// also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_index_emu.cpp runs them on the CPU emulator against the CPU
// backend.
//
// index_select (gather rows) and index_add (scatter-add rows) over (O, R, I)
// views; idx is int64 on the device. index_add in deterministic mode gives
// each output column (o, i) one thread that walks the n source rows in
// order, so repeated indices add up in a fixed order; otherwise one thread
// per source element adds with atomicAdd (order varies between runs).
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// The front end range-checks indices on the host, except inside a sync-free
// region (core/sync_free.h), where reading them back would stall the step:
// there an out-of-range row stops the kernel (a launch failure reported at
// the next check) instead of touching memory outside x or out.
__device__ __forceinline__ int64_t checked_row(int64_t r, int64_t R) {
  if (r < 0 || r >= R) __trap();
  return r;
}

// out (O, n, I) = x (O, R, I)[:, idx, :]
template <class T>
__global__ void __launch_bounds__(kBlock) index_select_kernel(const T* x, const int64_t* idx, int64_t idx_stride,
                                                              T* out, int64_t R, int64_t n, int64_t I, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    const int64_t i = e % I, rest = e / I, j = rest % n, o = rest / n;
    out[e] = x[(o * R + checked_row(idx[j * idx_stride], R)) * I + i];
  }
}

// out (O, R, I) += src (O, n, I) scattered to rows idx.
template <class T>
__global__ void __launch_bounds__(kBlock) index_add_kernel(const T* src, const int64_t* idx, int64_t idx_stride, T* out,
                                                           int64_t R, int64_t n, int64_t I, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    const int64_t i = e % I, rest = e / I, j = rest % n, o = rest / n;
    atomicAdd(out + (o * R + checked_row(idx[j * idx_stride], R)) * I + i, src[e]);
  }
}

// The same, deterministic: thread (o, i) adds src[o, j, i] for j = 0, 1, ...
template <class T>
__global__ void __launch_bounds__(kBlock) index_add_ordered_kernel(const T* src, const int64_t* idx, int64_t idx_stride,
                                                                   T* out, int64_t R, int64_t n, int64_t I,
                                                                   int64_t columns) {
  for (int64_t e = thread_index(); e < columns; e += thread_count()) {
    const int64_t i = e % I, o = e / I;
    const T* s = src + o * n * I + i;
    T* dst = out + o * R * I + i;
    for (int64_t j = 0; j < n; ++j) dst[checked_row(idx[j * idx_stride], R) * I] += s[j * I];
  }
}

}  // namespace
}  // namespace sagan::cuda
