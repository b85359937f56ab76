// Helpers shared by the fused kernels (flash attention, batched spectral-norm
// power iteration). The kernel headers compile two ways: under nvcc for the
// GPU, and under a host compiler after tests/cuda/emu/cuda_emu.h, which runs
// them on the CPU so that CI checks their logic without a GPU.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
// One name for all kernels: extern __shared__ arrays of different types
// under one name would clash.
#define SAGAN_DYNAMIC_SMEM(T, name)                                \
  extern __shared__ __align__(16) unsigned char sagan_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(sagan_dyn_smem_)
#define SAGAN_UNROLL _Pragma("unroll")
#define SAGAN_PRAGMA_(x) _Pragma(#x)
#define SAGAN_UNROLL_N(n) SAGAN_PRAGMA_(unroll n)
#elif defined(SAGAN_CUDA_EMU)
#include <stdexcept>
#define SAGAN_UNROLL
#define SAGAN_UNROLL_N(n)
#else
#error "fused kernels: compile with nvcc, or include tests/cuda/emu/cuda_emu.h first"
#endif

namespace sagan::fused {
// Internal linkage (see flash_attention_common.cuh): compiled by nvcc and,
// as host code, by the emulator tests in the same program.
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Outcome of a host-side dispatch before any CUDA call: the public API maps
// Invalid to cudaErrorInvalidValue.
enum class Status { Ok, Invalid };

__host__ __device__ inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
__host__ __device__ inline int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

// 16-byte loads (shared or global). memcpy keeps the emulated build free of
// aliasing tricks; nvcc gets the plain vector access (LDS.128 / LDG.128),
// which faults on an address that is not 16-byte aligned, so the emulator
// refuses one too.
__device__ __forceinline__ float4 ld4(const float* p) {
#if defined(__CUDACC__)
  return *reinterpret_cast<const float4*>(p);
#else
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) throw std::runtime_error("cuda_emu: ld4: misaligned 16-byte load");
  float4 r;
  std::memcpy(&r, p, sizeof r);
  return r;
#endif
}

// Asynchronous 4-byte global -> shared copy (cp.async, sm_80+), zero-filling
// the word when `pred` is false (then nothing is read from src, which must
// still be a valid address). The emulated tests run each such kernel with
// the copies landing at the wait that covers them, so that a missing wait
// shows, and at issue, so that a missing barrier before a prefetch shows
// (the two schedules of tests/cuda/emu/cuda_emu.h).
__device__ __forceinline__ void cp_async4(float* smem_dst, const float* src, bool pred) {
#if defined(__CUDACC__)
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 4 : 0) : "memory");
#else
  ::cuda_emu::cp_async(smem_dst, src, 4, pred ? 4 : 0);
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDACC__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  ::cuda_emu::cp_async_commit();
#endif
}
// Waits until at most N committed groups of this thread are in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDACC__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  ::cuda_emu::cp_async_wait(N);
#endif
}

// Component u of a float4; u is a compile-time constant after unrolling.
__device__ __forceinline__ float comp(const float4& a, int u) {
  return u == 0 ? a.x : u == 1 ? a.y : u == 2 ? a.z : a.w;
}

// Reductions over aligned groups of W lanes (W a power of two <= 32).
template <int W>
__device__ __forceinline__ float group_sum(float v) {
  SAGAN_UNROLL
  for (int o = W / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <int W>
__device__ __forceinline__ float group_max(float v) {
  SAGAN_UNROLL
  for (int o = W / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The attention backwards' D[row] = dot(gout[row], out[row]) (fused and
// tensor-core): one warp per row, lanes in a fixed order, then a fixed
// shuffle tree. Launched as rows_dot_kernel<kDotWarps> with kDotWarps * 32
// threads per block. A template, so translation units that do not launch it
// carry no unused kernel.
constexpr int kDotWarps = 8;

template <int Warps>
__global__ void __launch_bounds__(Warps * 32)
    rows_dot_kernel(const float* __restrict__ gout, const float* __restrict__ out, float* __restrict__ D,
                    int64_t rows, int dv) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * Warps + static_cast<int>(threadIdx.x) / 32;
  if (row >= rows) return;  // the whole warp leaves together
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const float* g = gout + row * dv;
  const float* o = out + row * dv;
  float s = 0.f;
  for (int c = lane; c < dv; c += 32) s = fmaf(g[c], o[c], s);
  s = group_sum<32>(s);
  if (lane == 0) D[row] = s;
}

}  // namespace
}  // namespace sagan::fused
