// Iteration over K equally shaped strided operands, shared by the CPU
// elementwise, copy and reduction kernels. Adjacent dims that are contiguous
// in every operand are merged first, so contiguous tensors become one flat
// loop that the compiler vectorises.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "sagan/core/shape.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan::cpu {

template <size_t K>
struct Geometry {
  Shape shape;                   // merged, outermost first
  std::array<Shape, K> strides;  // per operand, merged
};

template <size_t K>
Geometry<K> merge_dims(const Shape& shape, const std::array<Shape, K>& strides) {
  Geometry<K> g;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !g.shape.empty();
    for (size_t k = 0; k < K && merge; ++k) merge = g.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      g.shape.back() *= shape[d];
      for (size_t k = 0; k < K; ++k) g.strides[k].back() = strides[k][d];
    } else {
      g.shape.push_back(shape[d]);
      for (size_t k = 0; k < K; ++k) g.strides[k].push_back(strides[k][d]);
    }
  }
  if (g.shape.empty()) {  // scalar or all-ones shape
    g.shape.push_back(1);
    for (size_t k = 0; k < K; ++k) g.strides[k].push_back(1);
  }
  return g;
}

// Calls f(offsets, n, inner_strides) for every innermost row, or piece of
// one; operand 0 is the output. Rows run in parallel when the tensor is large
// enough to pay for the threads. Few long rows (a contiguous tensor merges
// into one) are cut into pieces of a multiple of 16 elements, so that they
// are shared among the threads too; the output is never broadcast (stride 0)
// along a row, so no two pieces write the same element.
template <size_t K, class F>
void for_each_row(const Shape& shape, const std::array<Shape, K>& strides, F&& f) {
  Geometry<K> g = merge_dims<K>(shape, strides);
  const size_t nd = g.shape.size();
  const int64_t inner = g.shape.back();
  std::array<int64_t, K> inner_strides;
  for (size_t k = 0; k < K; ++k) inner_strides[k] = g.strides[k].back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < nd; ++d) rows *= g.shape[d];
  if (rows == 0 || inner == 0) return;
  constexpr int64_t kMinPiece = 8192;
  const bool parallel = worth_parallel(rows * inner) && !omp_in_parallel() && omp_get_max_threads() > 1;
  int64_t piece = inner;
  if (parallel && inner_strides[0] != 0) {
    const int64_t want = 4 * static_cast<int64_t>(omp_get_max_threads());  // pieces per thread: some balance
    if (rows < want) piece = std::max(kMinPiece, ((inner * rows + want - 1) / want + 15) / 16 * 16);
  }
  const int64_t pieces = (inner + piece - 1) / piece;
#pragma omp parallel for schedule(static) if (parallel && rows * pieces > 1)
  for (int64_t t = 0; t < rows * pieces; ++t) {
    const int64_t r = t / pieces, begin = t % pieces * piece;
    std::array<int64_t, K> off{};
    int64_t rem = r;
    for (size_t d = nd - 1; d-- > 0;) {
      int64_t i = rem % g.shape[d];
      rem /= g.shape[d];
      for (size_t k = 0; k < K; ++k) off[k] += i * g.strides[k][d];
    }
    for (size_t k = 0; k < K; ++k) off[k] += begin * inner_strides[k];
    f(off, std::min(piece, inner - begin), inner_strides);
  }
}

}  // namespace sagan::cpu
