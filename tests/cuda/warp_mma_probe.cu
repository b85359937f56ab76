// Device side of warp_mma_probe.h: one small kernel per instruction wrapper.
#include "sagan/kernels/cuda/warp_mma.cuh"
#include "tests/cuda/warp_mma_probe.h"

namespace sagan::cudatest {
namespace {

namespace fz = sagan::fused;

// Fragment formulas (PTX ISA, "Matrix Fragments for mma.m16n8k8 /
// mma.m16n8k16"), g = lane / 4, t = lane % 4; the same as the emulator
// test's (tests/test_warp_mma_emu.cpp).
__global__ void mma_tf32_kernel(const float* A, const float* B, const float* C, float* D) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const float* a = A + w * 16 * 8;
  const float* b = B + w * 8 * 8;
  const float* c = C + w * 16 * 8;
  float* d = D + w * 16 * 8;
  const uint32_t af[4] = {fz::f32_to_tf32(a[g * 8 + t]), fz::f32_to_tf32(a[(g + 8) * 8 + t]),
                          fz::f32_to_tf32(a[g * 8 + t + 4]), fz::f32_to_tf32(a[(g + 8) * 8 + t + 4])};
  const uint32_t bf[2] = {fz::f32_to_tf32(b[t * 8 + g]), fz::f32_to_tf32(b[(t + 4) * 8 + g])};
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  fz::mma_tf32_16x8x8(acc, af, bf);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

__global__ void mma_bf16_kernel(const float* A, const float* B, const float* C, float* D) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const float* a = A + w * 16 * 16;
  const float* b = B + w * 16 * 8;
  const float* c = C + w * 16 * 8;
  float* d = D + w * 16 * 8;
  auto arow = [&](int i) { return g + ((i & 2) ? 8 : 0); };
  auto acol = [&](int i) { return 2 * t + (i & 1) + (i >= 4 ? 8 : 0); };
  auto brow = [&](int i) { return 2 * t + (i & 1) + (i >= 2 ? 8 : 0); };
  uint32_t af[4], bf[2];
  for (int r = 0; r < 4; ++r)
    af[r] = fz::pack_bf16x2(a[arow(2 * r) * 16 + acol(2 * r)], a[arow(2 * r + 1) * 16 + acol(2 * r + 1)]);
  for (int r = 0; r < 2; ++r) bf[r] = fz::pack_bf16x2(b[brow(2 * r) * 8 + g], b[brow(2 * r + 1) * 8 + g]);
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  fz::mma_bf16_16x8x16(acc, af, bf);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

__global__ void convert_kernel(const float* x, uint32_t* tf32_out, uint32_t* bf16_out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  tf32_out[i] = fz::f32_to_tf32(x[i]);
  const uint32_t lo = fz::pack_bf16x2(x[i], 0.f) & 0xffffu;
  const uint32_t hi = fz::pack_bf16x2(0.f, x[i]) >> 16;
  bf16_out[i] = lo == hi ? lo : 0xffffffffu;  // both halves must agree
}

__global__ void ldmatrix_kernel(uint32_t* out) {
  __shared__ __align__(16) float smem[4 * 8 * 8];
  const int lane = threadIdx.x;
  for (int i = lane; i < 4 * 8 * 8; i += 32) smem[i] = __uint_as_float(static_cast<uint32_t>(i));
  __syncwarp();
  uint32_t r[4];
  fz::ldmatrix_x4(r, smem + ((lane / 8) * 8 + lane % 8) * 8);
  for (int j = 0; j < 4; ++j) out[lane * 4 + j] = r[j];
}

cudaError_t finish() {
  const cudaError_t e = cudaGetLastError();
  return e != cudaSuccess ? e : cudaDeviceSynchronize();
}

}  // namespace

cudaError_t probe_mma_tf32(const float* A, const float* B, const float* C, float* D, int warps) {
  mma_tf32_kernel<<<1, 32 * warps>>>(A, B, C, D);
  return finish();
}

cudaError_t probe_mma_bf16(const float* A, const float* B, const float* C, float* D, int warps) {
  mma_bf16_kernel<<<1, 32 * warps>>>(A, B, C, D);
  return finish();
}

cudaError_t probe_convert(const float* x, uint32_t* tf32_out, uint32_t* bf16_out, int n) {
  convert_kernel<<<(n + 255) / 256, 256>>>(x, tf32_out, bf16_out, n);
  return finish();
}

cudaError_t probe_ldmatrix(uint32_t* out) {
  ldmatrix_kernel<<<1, 32>>>(out);
  return finish();
}

}  // namespace sagan::cudatest
