// The GEMM's one kernel of its own, apart from gemm.cu so that it also
// compiles as host code after tests/cuda/emu/cuda_emu.h
// (tests/test_gemm_emu.cpp runs it on the CPU emulator).
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// C = beta * C when K == 0 (cuBLAS is not asked to handle an empty sum);
// beta == 0 writes zeros without reading C, which may hold NaN.
template <class T>
__global__ void __launch_bounds__(kBlock)
    scale_kernel(T* c, int64_t rows, int64_t cols, int64_t ldc, int64_t stride_c, int64_t total, T beta) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t col = i % cols, rest = i / cols, row = rest % rows, b = rest / rows;
    T* p = c + b * stride_c + row * ldc + col;
    *p = beta == T(0) ? T(0) : beta * *p;
  }
}

}  // namespace
}  // namespace sagan::cuda
