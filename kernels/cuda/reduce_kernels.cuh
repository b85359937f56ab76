// The kernels of CudaBackend::sum (reduce.cu) and the choice among them,
// apart from the launches so that they also compile as host code after
// tests/cuda/emu/cuda_emu.h: tests/test_reduce_emu.cpp runs every launch
// shape on the CPU emulator against the CPU backend.
//
// The kept dims index outputs, the reduced dims are walked per output; both
// are merged strided geometries, so any input view works. Accumulation is in
// double for float and double alike. The launch shape follows the amount of
// work per output: a thread, a warp or a block per output, or, for few
// outputs with very long reductions, a block per slice of one output plus a
// second pass over the partial sums (deterministic, no atomics).
#pragma once
#include <algorithm>
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/strided.cuh"

namespace sagan::cuda {
namespace {

// kg offsets: [0] x, [1] out. rg offsets: [0] x.
template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_thread_kernel(const T* x, T* out, Strided<2> kg, Strided<1> rg, int64_t outputs, int64_t r) {
  for (int64_t o = thread_index(); o < outputs; o += thread_count()) {
    int64_t ko[2];
    kg.offsets(o, ko);
    double acc = 0;
    for (int64_t j = 0; j < r; ++j) {
      int64_t ro[1];
      rg.offsets(j, ro);
      acc += static_cast<double>(x[ko[0] + ro[0]]);
    }
    out[ko[1]] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_warp_kernel(const T* x, T* out, Strided<2> kg, Strided<1> rg, int64_t outputs, int64_t r) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = thread_count() >> 5;
  for (int64_t o = thread_index() >> 5; o < outputs; o += warps) {  // uniform per warp
    int64_t ko[2];
    kg.offsets(o, ko);
    double acc = 0;
    for (int64_t j = lane; j < r; j += 32) {
      int64_t ro[1];
      rg.offsets(j, ro);
      acc += static_cast<double>(x[ko[0] + ro[0]]);
    }
    acc = warp_sum(acc);
    if (lane == 0) out[ko[1]] = static_cast<T>(acc);
  }
}

// Block t covers slice (t % parts) of output (t / parts): elements
// [slice * chunk, min(r, (slice + 1) * chunk)). With parts == 1 it writes the
// output itself, else partial[t].
template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_block_kernel(const T* x, T* out, double* partial, Strided<2> kg, Strided<1> rg, int64_t outputs, int64_t r,
                     int64_t parts, int64_t chunk) {
  __shared__ double smem[32];
  for (int64_t t = blockIdx.x; t < outputs * parts; t += gridDim.x) {
    const int64_t o = t / parts, slice = t - o * parts;
    int64_t ko[2];
    kg.offsets(o, ko);
    const int64_t begin = slice * chunk;
    const int64_t end = begin + chunk < r ? begin + chunk : r;
    double acc = 0;
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
      int64_t ro[1];
      rg.offsets(j, ro);
      acc += static_cast<double>(x[ko[0] + ro[0]]);
    }
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) {
      if (parts == 1)
        out[ko[1]] = static_cast<T>(acc);
      else
        partial[t] = acc;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    sum_partials_kernel(const double* partial, T* out, Strided<2> kg, int64_t outputs, int64_t parts) {
  for (int64_t o = thread_index(); o < outputs; o += thread_count()) {
    int64_t ko[2];
    kg.offsets(o, ko);
    double acc = 0;
    for (int64_t p = 0; p < parts; ++p) acc += partial[o * parts + p];
    out[ko[1]] = static_cast<T>(acc);
  }
}

// out = x summed over the dims where out has size 1: the kept dims'
// geometry (offsets into x and out), the reduced dims' (into x), the counts.
struct SumGeometry {
  Strided<2> kept;
  Strided<1> reduced;
  int64_t outputs = 0, r = 0;
};

inline SumGeometry sum_geometry(const Shape& xs, const Shape& x_strides, const Shape& os, const Shape& o_strides) {
  Shape kshape, kxst, kost, rshape, rst;
  for (size_t i = 0; i < xs.size(); ++i) {
    SAGAN_CHECK(os[i] == xs[i] || os[i] == 1, "sum: output shape {} does not reduce input shape {} (dim {})",
                shape_str(os), shape_str(xs), i);
    if (os[i] == xs[i]) {
      kshape.push_back(xs[i]), kxst.push_back(x_strides[i]), kost.push_back(o_strides[i]);
    } else {
      rshape.push_back(xs[i]), rst.push_back(x_strides[i]);
    }
  }
  SumGeometry g;
  g.outputs = numel_of(kshape);
  g.r = numel_of(rshape);
  if (g.outputs > 0 && g.r > 0) {
    g.kept = make_strided<2>("sum", kshape, {&kxst, &kost});
    g.reduced = make_strided<1>("sum", rshape, {&rst});
  }
  return g;
}

// How sum runs for `outputs` outputs of r elements each on sm_count SMs.
struct SumPlan {
  enum Kind { Thread, Warp, Block } kind;
  int64_t parts = 1, chunk = 0;  // Block: slices per output and their length
  unsigned grid = 1;             // of the first launch; the partials pass takes blocks_for(outputs)
};

inline SumPlan plan_sum(int64_t outputs, int64_t r, int sm_count) {
  const int64_t busy_blocks = 4LL * sm_count;
  SumPlan p;
  if (r <= 32) {
    p.kind = SumPlan::Thread;
    p.grid = blocks_for(outputs);
  } else if (r <= 4096 || outputs >= busy_blocks * (kBlock / 32)) {
    p.kind = SumPlan::Warp;
    p.grid = blocks_for(outputs * 32);
  } else {
    // Long reductions: split each output over enough blocks to fill the GPU,
    // each slice at least 16 elements per thread.
    p.kind = SumPlan::Block;
    p.parts = std::max<int64_t>(1, busy_blocks / outputs);
    p.parts = std::min<int64_t>(p.parts, (r + 16 * kBlock - 1) / (16 * kBlock));
    p.chunk = (r + p.parts - 1) / p.parts;
    p.parts = (r + p.chunk - 1) / p.chunk;
    p.grid = grid_for_rows(outputs * p.parts);
  }
  return p;
}

}  // namespace
}  // namespace sagan::cuda
