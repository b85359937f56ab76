// The fused multi-tensor optimiser kernels (Adam, EMA) of optim.cu, apart
// from their launch so that they also compile as host code after
// tests/cuda/emu/cuda_emu.h: tests/test_optim_emu.cpp runs them on the CPU
// emulator against the CPU backend.
//
// One launch updates up to kGroup tensors. A table of per-tensor pointers and
// the running start offset of each tensor in the concatenated index space
// travels in the kernel's parameters (no host copy, so a CUDA graph can
// record the launch); each block takes a chunk of that space, finds the
// tensor of its first element by binary search, and threads step to the
// next tensor as they cross its end.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/kernels/cuda/fused_common.cuh"

namespace sagan::fused::optim {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = kThreads * 8;

// Up to four tensors per slot: Adam (param, grad, m, v); EMA (ema, param).
struct Slot {
  void* t[4];
};

// Largest t in [0, count) with starts[t] <= i (starts[0] == 0).
__device__ __forceinline__ int find_tensor(const int64_t* starts, int count, int64_t i) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (starts[mid] <= i)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// Calls f(slot, j) for every element j of every tensor, chunk by chunk.
template <class F>
__device__ __forceinline__ void for_each_element(const Slot* slots, const int64_t* starts, int count, const F& f) {
  __shared__ int first;
  const int64_t total = starts[count];
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * kChunk; base < total;
       base += static_cast<int64_t>(gridDim.x) * kChunk) {
    if (threadIdx.x == 0) first = find_tensor(starts, count, base);
    __syncthreads();
    int t = first;
    const int64_t end = base + kChunk < total ? base + kChunk : total;
    for (int64_t i = base + threadIdx.x; i < end; i += blockDim.x) {
      while (i >= starts[t + 1]) ++t;  // skips empty tensors too
      f(slots[t], i - starts[t]);
    }
    __syncthreads();  // `first` is rewritten for the next chunk
  }
}

// The update gate (core/kernels.def): null, or one T that is NaN to skip.
template <class T>
struct Gate {
  const T* gate;
  __device__ __forceinline__ bool off() const { return gate != nullptr && std::isnan(*gate); }
};

// PyTorch's arrangement of the bias corrections (as the CPU backend):
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), bc = 1 - beta^step.
template <class T>
struct AdamStep : Gate<T> {
  T step_size, sqrt_bc2, b1, b2, a1, a2, eps;  // a = 1 - b
  const T* scales;  // null, or {step_size, sqrt_bc2} on the device (a replayed graph's step)
  __device__ __forceinline__ void load() {
    if (scales != nullptr) step_size = scales[0], sqrt_bc2 = scales[1];
  }
  __device__ __forceinline__ void operator()(const Slot& s, int64_t j) const {
    T* p = static_cast<T*>(s.t[0]);
    const T g = static_cast<const T*>(s.t[1])[j];
    T* m = static_cast<T*>(s.t[2]);
    T* v = static_cast<T*>(s.t[3]);
    const T mj = b1 * m[j] + a1 * g;
    const T vj = b2 * v[j] + a2 * (g * g);
    m[j] = mj;
    v[j] = vj;
    p[j] -= step_size * (mj / (std::sqrt(vj) / sqrt_bc2 + eps));
  }
};

template <class T>
struct EmaStep : Gate<T> {
  T decay, rest;  // rest = 1 - decay, rounded once like the CPU backend
  __device__ __forceinline__ void load() {}
  __device__ __forceinline__ void operator()(const Slot& s, int64_t j) const {
    T* e = static_cast<T*>(s.t[0]);
    const T p = static_cast<const T*>(s.t[1])[j];
    e[j] = decay * e[j] + rest * p;
  }
};

// The tensors of one launch travel in the kernel's parameters (4 KiB at
// most): __grid_constant__ lets the threads index them in place. A call
// over more than kGroup tensors is several launches.
constexpr int kGroup = 64;
struct GroupTable {
  Slot slots[kGroup];
  int64_t starts[kGroup + 1];  // element offsets within the group, starts[0] = 0
};
static_assert(sizeof(GroupTable) <= 3000, "the table and the functor must fit the 4 KiB parameter space");

template <class F>
__global__ void __launch_bounds__(kThreads) multi_tensor_kernel(const __grid_constant__ GroupTable table, int count,
                                                                F f) {
  if (f.off()) return;  // read by every thread: one cached load, no divergence
  f.load();
  for_each_element(table.slots, table.starts, count, f);
}

// The launches of one call: for each group of up to kGroup tensors with
// elements, launch(grid, table, count) with a grid of at most max_blocks
// (starts: running element offsets over the whole call, starts[0] = 0).
template <class Launch>
void for_each_group(const std::vector<Slot>& slots, const std::vector<int64_t>& starts, int64_t max_blocks,
                    Launch&& launch) {
  for (size_t first = 0; first < slots.size(); first += kGroup) {
    const size_t count = std::min<size_t>(kGroup, slots.size() - first);
    GroupTable t{};
    for (size_t i = 0; i < count; ++i) {
      t.slots[i] = slots[first + i];
      t.starts[i] = starts[first + i] - starts[first];
    }
    t.starts[count] = starts[first + count] - starts[first];
    const int64_t total = t.starts[count];
    if (total == 0) continue;
    const int64_t chunks = (total + kChunk - 1) / kChunk;
    launch(static_cast<unsigned>(std::min<int64_t>(chunks, std::max<int64_t>(1, max_blocks))), t,
           static_cast<int>(count));
  }
}

}  // namespace
}  // namespace sagan::fused::optim
