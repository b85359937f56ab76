// Strided geometry of K equally shaped operands, passed to kernels by value.
// Dims of size 1 are dropped and dims contiguous in every operand merged (as
// kernels/cpu/strided.h does), so contiguous tensors become one flat dim and
// at most 8 dims remain in practice; more throws naming the op.
#pragma once
#include <array>
#include <cstdint>

#include "core/shape.h"
#include "kernels/cuda/launch.cuh"

namespace sagan::cuda {

constexpr int kMaxDims = 8;

template <int K>
struct Strided {
  int nd = 1;
  int64_t size[kMaxDims] = {1};
  int64_t stride[K][kMaxDims] = {};

  // Element offsets (in elements) of linear index i, row-major over size[].
  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[K]) const {
SAGAN_UNROLL
    for (int k = 0; k < K; ++k) off[k] = 0;
SAGAN_UNROLL
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d < nd) {
        const int64_t q = i / size[d];
        const int64_t r = i - q * size[d];
        i = q;
SAGAN_UNROLL
        for (int k = 0; k < K; ++k) off[k] += r * stride[k][d];
      }
    }
  }
  // All operands are one dense run: index i is offset i everywhere.
  __host__ __device__ bool flat() const {
    if (nd != 1) return false;
    for (int k = 0; k < K; ++k)
      if (stride[k][0] != 1 && size[0] != 1) return false;
    return true;
  }
};

template <int K>
Strided<K> make_strided(const char* op, const Shape& shape, const std::array<const Shape*, K>& strides) {
  Strided<K> g;
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < K && merge; ++k) merge = g.stride[k][nd - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      g.size[nd - 1] *= shape[d];
      for (int k = 0; k < K; ++k) g.stride[k][nd - 1] = (*strides[k])[d];
      continue;
    }
    SAGAN_CHECK(nd < kMaxDims,
                "{}: shape {} has more than {} dims that cannot be merged; the CUDA kernels take at most {}", op,
                shape_str(shape), kMaxDims, kMaxDims);
    g.size[nd] = shape[d];
    for (int k = 0; k < K; ++k) g.stride[k][nd] = (*strides[k])[d];
    ++nd;
  }
  if (nd == 0) {  // a scalar or all-ones shape: one element
    g.size[0] = 1;
    for (int k = 0; k < K; ++k) g.stride[k][0] = 1;
    nd = 1;
  }
  g.nd = nd;
  return g;
}

}  // namespace sagan::cuda
