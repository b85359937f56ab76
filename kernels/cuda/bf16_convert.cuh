// The float32 <-> bf16 conversions of --precision bf16, shared by the
// convolutions (conv2d.cu: cuDNN on bf16 copies) and the GEMMs (gemm.cu:
// cuBLAS on bf16 copies), apart from them so that they also compile as host
// code after tests/cuda/emu/cuda_emu.h (tests/test_conv2d_emu.cpp,
// tests/test_gemm_emu.cpp). bf16 values are their bit patterns (uint16_t, the
// layout of __nv_bfloat16), rounded to nearest even as cvt.rn.bf16.f32 does
// (core/reduced_precision.h on the host, the same rounding the CPU backend's
// bf16 emulation uses).
#pragma once
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"
#if defined(__CUDACC__)
#include <cuda_bf16.h>

#include "sagan/kernels/cuda/cuda_backend.h"
#else
#include "sagan/core/reduced_precision.h"
#endif

namespace sagan::cuda {
namespace {

__device__ __forceinline__ uint16_t float_to_bf16_bits(float x) {
#if defined(__CUDACC__)
  return __bfloat16_as_ushort(__float2bfloat16_rn(x));
#else
  return ::sagan::bf16_bits_rn(x);
#endif
}

__device__ __forceinline__ float bf16_bits_to_float(uint16_t h) {
#if defined(__CUDACC__)
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
#else
  return ::sagan::bf16_to_float(h);
#endif
}

__global__ void __launch_bounds__(kBlock) to_bf16_kernel(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = float_to_bf16_bits(in[i]);
}

__global__ void __launch_bounds__(kBlock) from_bf16_kernel(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = bf16_bits_to_float(in[i]);
}

#if defined(__CUDACC__)
// A workspace for n bf16 values; at least one, so that an empty operand has
// an address.
inline Buffer bf16_buffer(CudaBackend& be, int64_t n) {
  return be.buffer(static_cast<size_t>(n > 1 ? n : 1) * sizeof(uint16_t));
}

// n float32 values at p rounded to bf16 into a new workspace, queued on be's
// stream: the operand copies of --precision bf16 (gemm.cu, conv2d.cu).
inline Buffer bf16_copy(CudaBackend& be, const char* op, const float* p, int64_t n) {
  Buffer b = bf16_buffer(be, n);
  to_bf16_kernel<<<blocks_for(n), kBlock, 0, be.stream()>>>(p, b.get<uint16_t>(), n);
  check_launch(op, "to_bf16_kernel", be.stream());
  return b;
}
#endif

}  // namespace
}  // namespace sagan::cuda
