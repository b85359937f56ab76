// Strided geometry of K equally shaped operands, passed to kernels by value.
// Dims of size 1 are dropped and dims contiguous in every operand merged (as
// kernels/cpu/strided.h does), so contiguous tensors become one flat dim and
// at most 8 dims remain in practice; more throws naming the op.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

#include "sagan/core/shape.h"
#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {

constexpr int kMaxDims = 8;

__host__ __device__ __forceinline__ uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Division by a divisor fixed on the host, as a multiply-high, an add and a
// shift (Granlund & Montgomery's round-up method): for 1 <= d < 2^31 and
// 0 <= n < 2^31, n / d = (mulhi(n, m) + n) >> s with s = ceil(log2 d) and
// m = floor(2^32 (2^s - d) / d) + 1 (mulhi(n, m) <= n, so the sum stays
// below 2^32). A 64-bit division is a subroutine of some 70 instructions on
// the GPU, which a broadcast elementwise kernel would run per element and
// dim: more work than moving the element.
struct FastDiv {
  uint32_t m = 0, s = 0;
  static FastDiv make(uint32_t d) {
    FastDiv f;
    while (f.s < 32 && (uint64_t{1} << f.s) < d) ++f.s;
    f.m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << f.s) - d)) / d + 1);
    return f;
  }
  __host__ __device__ __forceinline__ uint32_t div(uint32_t n) const { return (mulhi32(n, m) + n) >> s; }
};

template <int K>
struct Strided {
  int nd = 1;
  // Every linear index fits in 31 bits: offsets() divides with fast[].
  bool narrow = false;
  int64_t size[kMaxDims] = {1};
  int64_t stride[K][kMaxDims] = {};
  FastDiv fast[kMaxDims];

  // Element offsets (in elements) of linear index i, row-major over size[].
  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[K]) const {
SAGAN_UNROLL
    for (int k = 0; k < K; ++k) off[k] = 0;
    if (narrow) {
      uint32_t j = static_cast<uint32_t>(i);
SAGAN_UNROLL
      for (int d = kMaxDims - 1; d >= 0; --d) {
        if (d < nd) {
          const uint32_t q = fast[d].div(j);
          const int64_t r = static_cast<int64_t>(j - q * static_cast<uint32_t>(size[d]));
          j = q;
SAGAN_UNROLL
          for (int k = 0; k < K; ++k) off[k] += r * stride[k][d];
        }
      }
      return;
    }
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
  int64_t count = 1;
  for (int d = 0; d < nd; ++d) count = g.size[d] > 0 && count <= INT64_MAX / g.size[d] ? count * g.size[d] : INT64_MAX;
  g.narrow = count < (int64_t{1} << 31);
  if (g.narrow)
    for (int d = 0; d < nd; ++d) g.fast[d] = FastDiv::make(static_cast<uint32_t>(std::max<int64_t>(g.size[d], 1)));
  return g;
}

}  // namespace sagan::cuda
