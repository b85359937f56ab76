// The fill and strided dtype-converting copy kernels of copy.cu, apart from
// their launches so that they also compile as host code after
// tests/cuda/emu/cuda_emu.h: tests/test_elementwise_emu.cpp runs them on the
// CPU emulator against the CPU backend.
#pragma once
#include <cstdint>

#include "sagan/kernels/convert_value.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/strided.cuh"

namespace sagan::cuda {
namespace {

template <class T>
__global__ void __launch_bounds__(kBlock) fill_kernel(T* p, Strided<1> g, int64_t n, T v) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) p[i] = v;
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[1];
    g.offsets(i, off);
    p[off[0]] = v;
  }
}

// Offsets: [0] destination, [1] source.
template <class D, class S>
__global__ void __launch_bounds__(kBlock) copy_kernel(D* dst, const S* src, Strided<2> g, int64_t n) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) dst[i] = convert_value<D>(src[i]);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[2];
    g.offsets(i, off);
    dst[off[0]] = convert_value<D>(src[off[1]]);
  }
}
}  // namespace
}  // namespace sagan::cuda
