// One spectral-norm power iteration for many matrices in three launches:
//   v = normalize(W^T u),  u = normalize(W v),  sigma = u^T W v,
// normalize(x) = x / max(||x||, eps), W (rows, cols) row-major, in place on
// u (rows) and v (cols); the order (v first, then u) is the CPU backend's.
//
//   1. colsum:   t = W^T u       a block per (matrix, 256 columns), all rows;
//                                 partial sums of t^2 per block
//   2. matvec:   r = W t / |t|    a warp per row, 8 rows a block;
//                                 partial sums of r^2 per block
//   3. finalize: v = t / |t|, u = r / |r|, sigma = |r|^2 / |r|
// Since W v = W t / |t|, phase 2 needs only the norm of t, not v itself, so
// W is read twice (the floor) and nothing waits on a grid-wide barrier
// inside a launch. Every sum has a fixed order: results are bitwise
// reproducible. Matrices go to the grid largest first, so the longest
// blocks start first. Design notes: docs/kernels.md.
//
// Included by sn_power_batched.cu (nvcc) and tests/test_sn_batched_emu.cpp
// (CPU emulation); the dispatch takes a Launcher like the attention kernels.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

#include "sagan/kernels/cuda/fused_common.cuh"
#include "sagan/kernels/cuda/sn_power_common.cuh"

namespace sagan::fused::sn {
// Internal linkage, as in flash_attention_common.cuh: this header is also
// compiled as host code into the emulator tests, which link against the
// engine, so its kernels must not share external symbols with the nvcc
// build's launch stubs.
namespace {

constexpr int kThreads = 256;
constexpr int kColTile = 256;            // phase 1: one column per thread
constexpr int kRowTile = kThreads / 32;  // phase 2: one row per warp
constexpr int kFinTile = 256;            // phase 3: one element per thread
constexpr int kMaxPerLaunch = 48;

// One matrix of a launch group. Offsets are in floats into the workspace.
struct Mat {
  const float* w;
  float* u;
  float* v;
  int rows, cols;
  int t_off, r_off, tpart_off, rpart_off;
  int sigma_index;  // position in the caller's list
  int vec;          // rows start 16-byte aligned: float4 reads in phase 2
  int begin[3];     // first block of this matrix in each phase's grid
};

struct Batch {
  Mat m[kMaxPerLaunch];
  int count;
  float eps;
  float* ws;
  float* sigma;  // may be null
};
// Passed by value as a kernel parameter (no upload, graph-capturable); the
// classic 4 KiB parameter limit applies on every toolkit.
static_assert(sizeof(Batch) <= 4000, "sn::Batch must fit the 4 KiB kernel-parameter space");

__host__ __device__ inline int t_parts(int cols) { return ceil_div(cols, kColTile); }
__host__ __device__ inline int r_parts(int rows) { return ceil_div(rows, kRowTile); }

// The matrix whose blocks in `phase` include block `blk`.
__device__ __forceinline__ int find_mat(const Batch& bt, int phase, int blk) {
  int mi = 0;
  for (int i = 1; i < bt.count; ++i)
    if (bt.m[i].begin[phase] <= blk) mi = i;
  return mi;
}

// Sum over the block in a fixed order (lanes by a fixed tree, then warps in
// order); the result is valid in thread 0.
__device__ __forceinline__ float block_sum(float x, float* red /* [kThreads / 32] */) {
  x = group_sum<32>(x);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) red[warp] = x;
  __syncthreads();
  float s = 0.f;
  if (threadIdx.x == 0)
    for (int w = 0; w < kThreads / 32; ++w) s += red[w];
  return s;
}

// |t|^2 (or |r|^2) of a matrix from the per-block partial sums, in order.
__device__ __forceinline__ float sum_parts(const float* parts, int n) {
  float s = 0.f;
  for (int i = 0; i < n; ++i) s += parts[i];
  return s;
}

__global__ void __launch_bounds__(kThreads) colsum_kernel(const __grid_constant__ Batch bt) {
  __shared__ float red[kThreads / 32];
  const int blk = static_cast<int>(blockIdx.x);
  const Mat& M = bt.m[find_mat(bt, 0, blk)];
  const int tile = blk - M.begin[0];
  const int j = tile * kColTile + static_cast<int>(threadIdx.x);
  float acc = 0.f;
  if (j < M.cols) {
    const float* wj = M.w + j;
    const int64_t ld = M.cols;
    int i = 0;
    // Eight independent loads in flight per thread; the sum stays in row
    // order.
    for (; i + 8 <= M.rows; i += 8) {
      float w8[8];
      SAGAN_UNROLL
      for (int x = 0; x < 8; ++x) w8[x] = wj[(i + x) * ld];
      SAGAN_UNROLL
      for (int x = 0; x < 8; ++x) acc = fmaf(w8[x], M.u[i + x], acc);
    }
    for (; i < M.rows; ++i) acc = fmaf(wj[i * ld], M.u[i], acc);
    bt.ws[M.t_off + j] = acc;
  }
  const float s = block_sum(acc * acc, red);
  if (threadIdx.x == 0) bt.ws[M.tpart_off + tile] = s;
}

__global__ void __launch_bounds__(kThreads) matvec_kernel(const __grid_constant__ Batch bt) {
  __shared__ float red[kThreads / 32];
  const int blk = static_cast<int>(blockIdx.x);
  const Mat& M = bt.m[find_mat(bt, 1, blk)];
  const int tile = blk - M.begin[1];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int i = tile * kRowTile + warp;
  const float tnorm = fmaxf(sqrtf(sum_parts(bt.ws + M.tpart_off, t_parts(M.cols))), bt.eps);
  const float* t = bt.ws + M.t_off;
  float r = 0.f;
  if (i < M.rows) {
    const float* wi = M.w + static_cast<int64_t>(i) * M.cols;
    float dot = 0.f;
    if (M.vec) {
      const int n4 = M.cols / 4;
      SAGAN_UNROLL_N(4)
      for (int j4 = lane; j4 < n4; j4 += 32) {
        const float4 a = ld4(wi + 4 * j4), b = ld4(t + 4 * j4);
        dot = fmaf(a.x, b.x, dot);
        dot = fmaf(a.y, b.y, dot);
        dot = fmaf(a.z, b.z, dot);
        dot = fmaf(a.w, b.w, dot);
      }
    } else {
      SAGAN_UNROLL_N(4)
      for (int j = lane; j < M.cols; j += 32) dot = fmaf(wi[j], t[j], dot);
    }
    r = group_sum<32>(dot) / tnorm;
    if (lane == 0) bt.ws[M.r_off + i] = r;
  }
  // Lane 0 of each warp holds its row's r; the other lanes add zero.
  const float s = block_sum(lane == 0 ? r * r : 0.f, red);
  if (threadIdx.x == 0) bt.ws[M.rpart_off + tile] = s;
}

__global__ void __launch_bounds__(kThreads) finalize_kernel(const __grid_constant__ Batch bt) {
  const int blk = static_cast<int>(blockIdx.x);
  const Mat& M = bt.m[find_mat(bt, 2, blk)];
  const int tile = blk - M.begin[2];
  const int idx = tile * kFinTile + static_cast<int>(threadIdx.x);
  const float tnorm = fmaxf(sqrtf(sum_parts(bt.ws + M.tpart_off, t_parts(M.cols))), bt.eps);
  const float r2 = sum_parts(bt.ws + M.rpart_off, r_parts(M.rows));
  const float rnorm = fmaxf(sqrtf(r2), bt.eps);
  if (idx < M.cols) M.v[idx] = bt.ws[M.t_off + idx] / tnorm;
  if (idx < M.rows) M.u[idx] = bt.ws[M.r_off + idx] / rnorm;
  // sigma = u^T (W v) = r^T r / |r|.
  if (tile == 0 && threadIdx.x == 0 && bt.sigma != nullptr) bt.sigma[M.sigma_index] = r2 / rnorm;
}

// ---------------------------------------------------------------------------
// Host side.
// ---------------------------------------------------------------------------
using MatIn = SnMatIn;

inline size_t mat_workspace_floats(int rows, int cols) {
  return round4(cols) + round4(rows) + round4(t_parts(cols)) + round4(r_parts(rows));
}

inline size_t workspace_bytes(const MatIn* mats, int count) {
  if (!sn_inputs_ok(mats, count)) return 0;
  size_t n = 0;
  for (int i = 0; i < count; ++i) n += mat_workspace_floats(mats[i].rows, mats[i].cols);
  return n * sizeof(float);
}

template <class L>
Status power_iteration(L& launcher, const MatIn* mats, int count, float eps, float* sigma, void* workspace,
                       size_t ws_bytes) {
  if (!sn_inputs_ok(mats, count) || !(eps > 0.f)) return Status::Invalid;
  if (count == 0) return Status::Ok;
  if (!sn_workspace_ok(workspace, ws_bytes, workspace_bytes(mats, count))) return Status::Invalid;
  const std::vector<int> order = sn_largest_first(mats, count);

  float* ws = static_cast<float*>(workspace);
  size_t off = 0;
  for (int g0 = 0; g0 < count; g0 += kMaxPerLaunch) {
    Batch bt{};
    bt.count = std::min(kMaxPerLaunch, count - g0);
    bt.eps = eps;
    bt.ws = ws;
    bt.sigma = sigma;
    int64_t blocks[3] = {0, 0, 0};
    for (int x = 0; x < bt.count; ++x) {
      const int src = order[g0 + x];
      const MatIn& in = mats[src];
      Mat& m = bt.m[x];
      m.w = in.w;
      m.u = in.u;
      m.v = in.v;
      m.rows = in.rows;
      m.cols = in.cols;
      m.t_off = static_cast<int>(off);
      m.r_off = static_cast<int>(off + round4(in.cols));
      m.tpart_off = static_cast<int>(off + round4(in.cols) + round4(in.rows));
      m.rpart_off = static_cast<int>(m.tpart_off + round4(t_parts(in.cols)));
      off += mat_workspace_floats(in.rows, in.cols);
      m.sigma_index = src;
      m.vec = (reinterpret_cast<uintptr_t>(in.w) % 16 == 0 && in.cols % 4 == 0) ? 1 : 0;
      const int64_t n[3] = {t_parts(in.cols), r_parts(in.rows), ceil_div(std::max(in.rows, in.cols), kFinTile)};
      for (int p = 0; p < 3; ++p) {
        m.begin[p] = static_cast<int>(blocks[p]);
        blocks[p] += n[p];
      }
    }
    if (blocks[0] > 0x7fffffff || blocks[1] > 0x7fffffff || blocks[2] > 0x7fffffff) return Status::Invalid;
    launcher.launch(colsum_kernel, dim3(static_cast<unsigned>(blocks[0])), dim3(kThreads), 0, bt);
    launcher.launch(matvec_kernel, dim3(static_cast<unsigned>(blocks[1])), dim3(kThreads), 0, bt);
    launcher.launch(finalize_kernel, dim3(static_cast<unsigned>(blocks[2])), dim3(kThreads), 0, bt);
  }
  return Status::Ok;
}

}  // namespace
}  // namespace sagan::fused::sn
