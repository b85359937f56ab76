// The convolution's own small kernels around cuDNN, apart from conv2d.cu so
// that they also compile as host code after tests/cuda/emu/cuda_emu.h
// (tests/test_conv2d_emu.cpp runs them on the CPU emulator): the bias add;
// the float32 <-> bf16 conversions of --precision bf16 are bf16_convert.cuh's.
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/bf16_convert.cuh"
#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// Bias added after the convolution: out (B, C, hw) += bias[c], bias strided.
template <class T>
__global__ void __launch_bounds__(kBlock)
    add_bias_kernel(T* out, const T* bias, int64_t bias_stride, int64_t channels, int64_t hw, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] += bias[((i / hw) % channels) * bias_stride];
}

}  // namespace
}  // namespace sagan::cuda
