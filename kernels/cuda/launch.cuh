// Launch geometry and warp/block reductions shared by the kernels.
//
// Every kernel loops grid-stride over int64 indices, so a grid is only a
// performance choice: sizes above 2^31 are correct and no grid dimension ever
// exceeds its limit (only gridDim.x is used, capped at kMaxBlocks).
//
// Compiles under nvcc and, after tests/cuda/emu/cuda_emu.h, as host code for
// the CPU emulator (fused_common.cuh picks the language surface).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "sagan/kernels/cuda/fused_common.cuh"

namespace sagan::cuda {

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 65535LL * 8;

inline unsigned blocks_for(int64_t work_items, int block = kBlock) {
  int64_t g = (work_items + block - 1) / block;
  return static_cast<unsigned>(std::clamp<int64_t>(g, 1, kMaxBlocks));
}
inline unsigned grid_for_rows(int64_t rows) { return static_cast<unsigned>(std::clamp<int64_t>(rows, 1, kMaxBlocks)); }

// Threads per block for one-block-per-row kernels: enough warps for the row,
// at most kBlock.
inline int block_for_row(int64_t n) {
  int b = 32;
  while (b < kBlock && b < n) b *= 2;
  return b;
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
SAGAN_UNROLL
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class A>
__device__ __forceinline__ A warp_max(A v) {
SAGAN_UNROLL
  for (int o = 16; o > 0; o >>= 1) {
    A w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Block-wide reductions; every thread of the block must call them (uniform
// control flow), blockDim.x a multiple of 32; `smem` holds 32 values. All
// threads get the result, and smem may be reused right after.
template <class A>
__device__ A block_sum(A v, A* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nwarps ? smem[lane] : A(0);
    v = warp_sum(v);
    if (lane == 0) smem[0] = v;
  }
  __syncthreads();
  v = smem[0];
  __syncthreads();
  return v;
}
template <class A>
__device__ A block_max(A v, A* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nwarps ? smem[lane] : -std::numeric_limits<A>::infinity();
    v = warp_max(v);
    if (lane == 0) smem[0] = v;
  }
  __syncthreads();
  v = smem[0];
  __syncthreads();
  return v;
}

}  // namespace sagan::cuda
