// The tensor-core instructions of the fused kernels, one small wrapper each,
// so that the CPU emulator can execute them: under nvcc each is one PTX
// instruction (sm_80+, so sm_90 too); under tests/cuda/emu/cuda_emu.h each
// calls the emulator's warp-collective version (cuda_emu_mma.h) or the CPU
// reference of the conversion (core/reduced_precision.h), bit for bit the
// same rounding.
//
//   f32_to_tf32      cvt.rna.tf32.f32
//   pack_bf16x2      cvt.rn.bf16x2.f32 (lo in bits 0-15)
//   mma_tf32_16x8x8  mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
//   mma_bf16_16x8x16 mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
//   ldmatrix_x4      ldmatrix.sync.aligned.m8n8.x4.shared.b16
//   cp_async16       cp.async.cg.shared.global, 16 bytes, zero fill
// Fragment layouts: tests/cuda/emu/cuda_emu_mma.h (from the PTX ISA).
#pragma once
#include "sagan/kernels/cuda/fused_common.cuh"

namespace sagan::fused {
namespace {

__device__ __forceinline__ uint32_t f32_to_tf32(float x) {
#if defined(__CUDACC__)
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#else
  return ::sagan::tf32_bits_rna(x);
#endif
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
#if defined(__CUDACC__)
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return ::sagan::pack_bf16x2_rn(lo, hi);
#endif
}

// d += a b for one 16x8x8 TF32 tile: a[4], b[2] (fragment layouts in
// cuda_emu_mma.h).
__device__ __forceinline__ void mma_tf32_16x8x8(float (&d)[4], const uint32_t* a, const uint32_t* b) {
#if defined(__CUDACC__)
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  const uint32_t aa[4] = {a[0], a[1], a[2], a[3]}, bb[2] = {b[0], b[1]};
  ::cuda_emu::mma_m16n8k8_tf32(d, aa, bb, d);
#endif
}

// d += a b for one 16x8x16 BF16 tile: a[4], b[2]; float32 accumulation.
__device__ __forceinline__ void mma_bf16_16x8x16(float (&d)[4], const uint32_t* a, const uint32_t* b) {
#if defined(__CUDACC__)
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  const uint32_t aa[4] = {a[0], a[1], a[2], a[3]}, bb[2] = {b[0], b[1]};
  ::cuda_emu::mma_m16n8k16_bf16(d, aa, bb, d);
#endif
}

// Four 8x8 matrices of 16-bit elements from shared memory; lanes 8j..8j+7
// pass the 16-byte-aligned row addresses of matrix j; lane l gets word l % 4
// of row l / 4 of matrix j in r[j]. On float data a "row" is 4 floats and
// lane l gets float (l / 4, l % 4): the TF32 A/B fragment element.
// "memory": the read must stay behind the barrier that published the data.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const float* row) {
#if defined(__CUDACC__)
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
#else
  ::cuda_emu::ldmatrix_x4(r, row);
#endif
}

// 16-byte asynchronous global -> shared copy; the bytes past src_bytes
// (0..16) are zero-filled and not read. dst and src 16-byte aligned.
__device__ __forceinline__ void cp_async16(float* dst, const float* src, int src_bytes) {
#if defined(__CUDACC__)
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes) : "memory");
#else
  ::cuda_emu::cp_async(dst, src, 16, src_bytes);
#endif
}

}  // namespace
}  // namespace sagan::fused
