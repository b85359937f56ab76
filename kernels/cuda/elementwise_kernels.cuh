// The elementwise kernels of elementwise.cu, apart from their launches so
// that they also compile as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_elementwise_emu.cpp runs them on the CPU emulator against the
// CPU backend. The per-element formulas are kernels/elementwise_math.h's
// functors, the ones the CPU evaluates. Broadcast operands arrive expanded
// (stride 0); dense operands take the flat path. No __restrict__: out may
// alias an input (same geometry), and each element is read before it is
// written by one thread.
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/strided.cuh"

namespace sagan::cuda {
namespace {

// Offsets: [0] out, [1] x.
template <class T, class F>
__global__ void __launch_bounds__(kBlock) unary_kernel(const T* x, T* out, Strided<2> g, int64_t n, F f, T a) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = f(x[i], a);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[2];
    g.offsets(i, off);
    out[off[0]] = f(x[off[1]], a);
  }
}

// Offsets: [0] gx, [1] x, [2] y, [3] gy.
template <class T, class F>
__global__ void __launch_bounds__(kBlock)
    unary_backward_kernel(const T* x, const T* y, const T* gy, T* gx, Strided<4> g, int64_t n, F df, T a) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) gx[i] = df(x[i], y[i], a, gy[i]);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[4];
    g.offsets(i, off);
    gx[off[0]] = df(x[off[1]], y[off[2]], a, gy[off[3]]);
  }
}

// Offsets: [0] out, [1] a, [2] b.
template <class T, class F>
__global__ void __launch_bounds__(kBlock) binary_kernel(const T* a, const T* b, T* out, Strided<3> g, int64_t n, F f) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = f(a[i], b[i]);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[3];
    g.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}
}  // namespace
}  // namespace sagan::cuda
