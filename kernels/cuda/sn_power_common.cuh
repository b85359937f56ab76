// The host side that both batched power-iteration variants share
// (sn_power_batched_kernels.cuh: column tiles; sn_power_rowchunk_kernels.cuh:
// row chunks): a matrix as the dispatch takes it, the checks of the inputs
// and the workspace, and the order in which matrices go to the grid.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "sagan/kernels/cuda/fused_common.cuh"

namespace sagan::fused {
namespace {

// W (rows, cols) row-major; u (rows) and v (cols) updated in place.
struct SnMatIn {
  const float* w;
  float* u;
  float* v;
  int rows, cols;
};

// Workspace regions start on 16-byte boundaries (float4 access).
inline size_t round4(size_t n) { return (n + 3) / 4 * 4; }

inline bool sn_inputs_ok(const SnMatIn* mats, int count) {
  if (count < 0 || (count > 0 && mats == nullptr)) return false;
  for (int i = 0; i < count; ++i) {
    const SnMatIn& m = mats[i];
    if (!m.w || !m.u || !m.v || m.rows < 1 || m.cols < 1) return false;
  }
  return true;
}

// need: the variant's workspace in bytes; offsets into it are int floats.
inline bool sn_workspace_ok(const void* workspace, size_t ws_bytes, size_t need) {
  return workspace != nullptr && ws_bytes >= need && need / sizeof(float) <= 0x7fffffff &&
         reinterpret_cast<uintptr_t>(workspace) % 16 == 0;
}

// Largest first, so that the blocks that run longest start first.
inline std::vector<int> sn_largest_first(const SnMatIn* mats, int count) {
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return int64_t(mats[a].rows) * mats[a].cols > int64_t(mats[b].rows) * mats[b].cols;
  });
  return order;
}

}  // namespace
}  // namespace sagan::fused
