// The per-matrix power iteration's normalisation kernel (spectral_norm.cu;
// its products are cuBLAS gemv), apart from its launch so that it also
// compiles as host code after tests/cuda/emu/cuda_emu.h:
// tests/test_attention_unfused_emu.cpp runs it on the CPU emulator.
#pragma once
#include <cmath>
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// x <- x / max(|x|, eps) for a strided vector, in one block.
template <class T>
__global__ void __launch_bounds__(kBlock) normalize_kernel(T* x, int64_t n, int64_t inc, double eps) {
  __shared__ double smem[32];
  double ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = static_cast<double>(x[i * inc]);
    ss += v * v;
  }
  ss = block_sum(ss, smem);
  const double norm = std::sqrt(ss);
  const T scale = static_cast<T>(1.0 / (norm > eps ? norm : eps));
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) x[i * inc] *= scale;
}

}  // namespace
}  // namespace sagan::cuda
