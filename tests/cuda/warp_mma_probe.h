// Device probes of the tensor-core instruction wrappers
// (kernels/cuda/warp_mma.cuh), built by nvcc into sagan_cuda_tests
// (warp_mma_probe.cu): each runs one instruction on the GPU on operands the
// test supplies, so that test_warp_mma.cpp can check the fragment layouts
// and conversions the CPU emulator assumes against the hardware. All
// pointers are device pointers; each call synchronises and returns the
// first CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace sagan::cudatest {

// Per warp w < warps: D_w = A_w B_w + C_w with A 16x8 (tf32) or 16x16
// (bf16), B 8x8 / 16x8, C, D 16x8, all row-major float; the lanes build
// their fragments with the PTX ISA's formulas and convert with
// f32_to_tf32 / pack_bf16x2.
cudaError_t probe_mma_tf32(const float* A, const float* B, const float* C, float* D, int warps);
cudaError_t probe_mma_bf16(const float* A, const float* B, const float* C, float* D, int warps);

// out[i] = f32_to_tf32(x[i]); out16[i] = the bf16 half pack_bf16x2 makes of
// x[i] (as the low half of (x[i], 0) and checked against the high half of
// (0, x[i])); n any.
cudaError_t probe_convert(const float* x, uint32_t* tf32_out, uint32_t* bf16_out, int n);

// One warp: shared memory word i = i (4 x 8 rows of 8 words); lane l passes
// row (l / 8) * 8 + l % 8; out[l * 4 + j] = what ldmatrix_x4 put in r[j].
cudaError_t probe_ldmatrix(uint32_t* out);

}  // namespace sagan::cudatest
