// One spectral-norm power iteration for many matrices in two launches, with
// the work split over rows as well as columns (the alternative to
// sn_power_batched_kernels.cuh, whose colsum phase gives a tall matrix such
// as SAGAN-128's 16384 x 128 input linear a single block):
//
//   1. colsum:  t_c = sum over the rows of chunk c of W_i u_i, a block per
//               (matrix, row chunk, column tile), 16-byte row reads; the
//               partials t_c go to the workspace (plain stores).
//   2. matvec:  a block per (matrix, row tile): t = sum_c t_c in chunk order
//               (into shared memory), rt_i = W_i t for its rows (a warp per
//               row, 16-byte reads), partial sums of rt^2 per block. The
//               block that finishes last (an integer ticket per matrix)
//               adds the partials in tile order and writes
//               v = t / max(|t|, eps), u = r / max(|r|, eps) with
//               r = rt / max(|t|, eps), and sigma = |r|^2 / max(|r|, eps).
// The same steps and order of operations as the CPU backend (v first, then
// u); W is read twice, the floor. Every float sum has a fixed order (chunk,
// tile and lane orders, fixed shuffle trees); the only atomic is the integer
// ticket, which picks which block finishes but not what it computes, so
// results are bitwise reproducible. The tickets are zeroed by launch 1 and
// left at zero by the finishing blocks.
//
// Row chunks: enough blocks per matrix in launch 1 (kTargetBlocks over the
// column tiles), at most kMaxChunks; launch 2 rebuilds t from the chunks in
// every block, so its row tiles grow with the chunk count (8 rows per warp
// at most) to keep those extra reads (L2-resident) under a quarter of W's.
//
// Included by sn_power_batched.cu (nvcc) and tests/test_sn_batched_emu.cpp.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

#include "sagan/kernels/cuda/fused_common.cuh"
#include "sagan/kernels/cuda/sn_power_common.cuh"

namespace sagan::fused::snr {
// Internal linkage, as in flash_attention_common.cuh.
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kColTile = 256;  // launch 1: column groups per block (float4 groups when vec)
constexpr int kTargetBlocks = 32;
constexpr int kMaxChunks = 16;
constexpr int kMinChunkRows = 32;
constexpr int kTCols = 8192;  // launch 2: columns of t staged in shared memory at a time
constexpr int kMaxPerLaunch = 48;

struct Mat {
  const float* w;
  float* u;
  float* v;
  int rows, cols;
  int n_chunks, col_tiles, rows_per_warp, row_tiles;
  int tpart_off, rt_off, rsq_off, ticket_off;  // floats into the workspace
  int sigma_index;                             // position in the caller's list
  int vec;                                     // rows 16-byte aligned, cols % 4 == 0
  int begin[2];                                // first block in each launch
};

struct Batch {
  Mat m[kMaxPerLaunch];
  int count;
  float eps;
  float* ws;
  float* sigma;  // may be null
};
// Passed by value (no upload, graph-capturable), under the 4 KiB parameter
// limit of every toolkit.
static_assert(sizeof(Batch) <= 4000, "snr::Batch must fit the 4 KiB kernel-parameter space");

__device__ __forceinline__ int find_mat(const Batch& bt, int launch, int blk) {
  int mi = 0;
  for (int i = 1; i < bt.count; ++i)
    if (bt.m[i].begin[launch] <= blk) mi = i;
  return mi;
}

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

// Rows per chunk; a chunk past the last row (possible after rounding) adds
// zeros.
__device__ __forceinline__ int chunk_rows(const Mat& M) { return ceil_div(M.rows, M.n_chunks); }

// Reads another block's result: past L1, which is not coherent across
// multiprocessors.
__device__ __forceinline__ float load_cg(const float* p) {
#if defined(__CUDACC__)
  return __ldcg(p);
#else
  return *p;
#endif
}

// Fixed-order block sum (lanes by a fixed tree, then warps in order); valid
// in thread 0.
__device__ __forceinline__ float block_sum(float x, float* red /* [kWarps] */) {
  x = group_sum<32>(x);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = x;
  __syncthreads();
  float s = 0.f;
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarps; ++w) s += red[w];
  return s;
}

// Launch 1: t partial of one row chunk and one column tile. The block's
// threads are W lanes across the tile's column groups times RL = 256 / W
// row lanes; row lane rl takes rows rl, rl + RL, ... of the chunk, and the
// RL partial sums are added in row-lane order.
__global__ void __launch_bounds__(kThreads) colsum_kernel(const __grid_constant__ Batch bt) {
  __shared__ float4 red[kThreads];
  const int blk = static_cast<int>(blockIdx.x);
  const int tid = static_cast<int>(threadIdx.x);
  if (blk == 0)  // launch 2's tickets start at zero (launch 2 runs after this whole launch)
    for (int i = tid; i < bt.count; i += kThreads) reinterpret_cast<unsigned*>(bt.ws)[bt.m[i].ticket_off] = 0u;
  const Mat& M = bt.m[find_mat(bt, 0, blk)];
  const int local = blk - M.begin[0];
  const int chunk = local / M.col_tiles, ct = local % M.col_tiles;
  const int cr = chunk_rows(M);
  const int r0 = chunk * cr, r1 = imin(M.rows, r0 + cr);
  const int groups = M.vec ? M.cols / 4 : M.cols;  // column groups (float4 or single)
  const int g0 = ct * kColTile;
  const int W = imin(kColTile, groups - g0);
  const int RL = kThreads / W;
  const int cg = tid % W, rl = tid / W;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (rl < RL) {
    const int64_t ld = M.cols;
    if (M.vec) {
      const float* wc = M.w + 4 * (g0 + cg);
      int i = r0 + rl;
      // Four independent 16-byte loads in flight; the sum stays in row order.
      for (; i + 3 * RL < r1; i += 4 * RL) {
        float4 w4[4];
        SAGAN_UNROLL
        for (int x = 0; x < 4; ++x) w4[x] = ld4(wc + (i + x * RL) * ld);
        SAGAN_UNROLL
        for (int x = 0; x < 4; ++x) {
          const float ui = M.u[i + x * RL];
          acc.x = fmaf(w4[x].x, ui, acc.x);
          acc.y = fmaf(w4[x].y, ui, acc.y);
          acc.z = fmaf(w4[x].z, ui, acc.z);
          acc.w = fmaf(w4[x].w, ui, acc.w);
        }
      }
      for (; i < r1; i += RL) {
        const float4 w4 = ld4(wc + i * ld);
        const float ui = M.u[i];
        acc.x = fmaf(w4.x, ui, acc.x);
        acc.y = fmaf(w4.y, ui, acc.y);
        acc.z = fmaf(w4.z, ui, acc.z);
        acc.w = fmaf(w4.w, ui, acc.w);
      }
    } else {
      const float* wc = M.w + g0 + cg;
      for (int i = r0 + rl; i < r1; i += RL) acc.x = fmaf(wc[i * ld], M.u[i], acc.x);
    }
  }
  red[tid] = acc;
  __syncthreads();
  if (rl == 0) {
    float4 s = red[cg];
    for (int r = 1; r < RL; ++r) {
      const float4 o = red[r * W + cg];
      s.x += o.x;
      s.y += o.y;
      s.z += o.z;
      s.w += o.w;
    }
    float* tp = bt.ws + M.tpart_off + static_cast<int64_t>(chunk) * M.cols;
    if (M.vec) {
      float* dst = tp + 4 * (g0 + cg);
      dst[0] = s.x;
      dst[1] = s.y;
      dst[2] = s.z;
      dst[3] = s.w;
    } else {
      tp[g0 + cg] = s.x;
    }
  }
}

// t_j from the chunk partials, in chunk order (the same bits in every block).
__device__ __forceinline__ float t_at(const Mat& M, const float* ws, int j) {
  const float* tp = ws + M.tpart_off + j;
  float s = tp[0];
  for (int c = 1; c < M.n_chunks; ++c) s += tp[static_cast<int64_t>(c) * M.cols];
  return s;
}

// Launch 2: rt = W t for rows_per_warp rows per warp, then the finishing
// block normalises. Dynamic shared memory: min(cols, kTCols) floats of t.
__global__ void __launch_bounds__(kThreads) matvec_kernel(const __grid_constant__ Batch bt) {
  SAGAN_DYNAMIC_SMEM(float, ts);
  __shared__ float red[kWarps];
  __shared__ int last;
  const int blk = static_cast<int>(blockIdx.x);
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const Mat& M = bt.m[find_mat(bt, 1, blk)];
  const int tile = blk - M.begin[1];
  const int row0 = (tile * kWarps + warp) * M.rows_per_warp;
  constexpr int kMaxRpw = 8;
  float dot[kMaxRpw];
  SAGAN_UNROLL
  for (int r = 0; r < kMaxRpw; ++r) dot[r] = 0.f;
  float tsq = 0.f;  // this thread's share of |t|^2, columns in a fixed order
  for (int c0 = 0; c0 < M.cols; c0 += kTCols) {
    const int nc = imin(kTCols, M.cols - c0);
    __syncthreads();  // the previous column chunk has been read
    for (int j = tid; j < nc; j += kThreads) {
      const float tj = t_at(M, bt.ws, c0 + j);
      ts[j] = tj;
      tsq = fmaf(tj, tj, tsq);
    }
    __syncthreads();
    SAGAN_UNROLL
    for (int r = 0; r < kMaxRpw; ++r) {
      const int i = row0 + r;
      if (r >= M.rows_per_warp || i >= M.rows) break;
      const float* wi = M.w + static_cast<int64_t>(i) * M.cols + c0;
      if (M.vec) {
        SAGAN_UNROLL_N(4)
        for (int j4 = lane; j4 < nc / 4; j4 += 32) {
          const float4 a = ld4(wi + 4 * j4), b = ld4(ts + 4 * j4);
          dot[r] = fmaf(a.x, b.x, dot[r]);
          dot[r] = fmaf(a.y, b.y, dot[r]);
          dot[r] = fmaf(a.z, b.z, dot[r]);
          dot[r] = fmaf(a.w, b.w, dot[r]);
        }
      } else {
        for (int j = lane; j < nc; j += 32) dot[r] = fmaf(wi[j], ts[j], dot[r]);
      }
    }
  }
  // rt_i for the warp's rows; the block's sum of rt^2 in row order.
  float sq = 0.f;
  SAGAN_UNROLL
  for (int r = 0; r < kMaxRpw; ++r) {
    const int i = row0 + r;
    if (r >= M.rows_per_warp) break;
    const float rt = group_sum<32>(dot[r]);
    if (i < M.rows) {
      if (lane == 0) bt.ws[M.rt_off + i] = rt;
      sq = fmaf(rt, rt, sq);
    }
  }
  // Each writer of rt fences its own writes: the programming guide promises
  // a fence orders the calling thread's writes; that thread 0's fence below
  // also covers the other warps' (PTX cumulativity through the barrier) is
  // the memory model's finer print. One fence per warp.
  if (lane == 0) __threadfence();
  const float block_sq = block_sum(lane == 0 ? sq : 0.f, red);
  if (tid == 0) {
    bt.ws[M.rsq_off + tile] = block_sq;
    __threadfence();  // the partials are visible before the ticket is taken
    unsigned* ticket = reinterpret_cast<unsigned*>(bt.ws) + M.ticket_off;
    last = atomicAdd(ticket, 1u) == static_cast<unsigned>(M.row_tiles - 1);
  }
  __syncthreads();
  if (!last) return;

  // The finishing block: every other block's rt and rsq are in place.
  __threadfence();
  const float t2 = block_sum(tsq, red);  // every column, same order in every block
  __shared__ float norms[3];
  if (tid == 0) {
    float r2 = 0.f;
    for (int x = 0; x < M.row_tiles; ++x) r2 += load_cg(bt.ws + M.rsq_off + x);
    const float tn = fmaxf(sqrtf(t2), bt.eps);
    const float rnorm = sqrtf(r2) / tn;  // |r| = |W t| / max(|t|, eps)
    norms[0] = tn;
    norms[1] = fmaxf(rnorm, bt.eps);
    if (bt.sigma != nullptr) bt.sigma[M.sigma_index] = rnorm * rnorm / norms[1];  // u^T W v = r^T r / max(|r|, eps)
    reinterpret_cast<unsigned*>(bt.ws)[M.ticket_off] = 0u;                        // ready for the next call
  }
  __syncthreads();
  const float tn = norms[0], rn = norms[1];
  for (int j = tid; j < M.cols; j += kThreads) M.v[j] = t_at(M, bt.ws, j) / tn;
  for (int i = tid; i < M.rows; i += kThreads) M.u[i] = load_cg(bt.ws + M.rt_off + i) / tn / rn;
}

// ---------------------------------------------------------------------------
// Host side.
// ---------------------------------------------------------------------------
using MatIn = SnMatIn;

struct Geometry {
  int n_chunks, col_tiles, rows_per_warp, row_tiles;
};

inline Geometry geometry(int rows, int cols, bool vec) {
  Geometry g;
  const int groups = vec ? cols / 4 : cols;
  g.col_tiles = ceil_div(groups, kColTile);
  const int most = std::max(1, std::min(kMaxChunks, ceil_div(rows, kMinChunkRows)));
  g.n_chunks = std::clamp(ceil_div(kTargetBlocks, g.col_tiles), 1, most);
  g.n_chunks = ceil_div(rows, ceil_div(rows, g.n_chunks));  // no empty chunk
  g.rows_per_warp = std::clamp(ceil_div(g.n_chunks, 2), 1, 8);
  g.row_tiles = ceil_div(rows, kWarps * g.rows_per_warp);
  return g;
}

inline bool is_vec(const MatIn& m) { return reinterpret_cast<uintptr_t>(m.w) % 16 == 0 && m.cols % 4 == 0; }

// The whole workspace, in floats: per matrix the chunk partials of t, rt,
// the row tiles' partial sums and a ticket.
inline size_t mat_workspace_floats(const MatIn& m) {
  const Geometry g = geometry(m.rows, m.cols, is_vec(m));
  return round4(size_t(g.n_chunks) * m.cols) + round4(m.rows) + round4(g.row_tiles) + 4;
}

inline size_t workspace_bytes(const MatIn* mats, int count) {
  if (!sn_inputs_ok(mats, count)) return 0;
  size_t n = 0;
  for (int i = 0; i < count; ++i) n += mat_workspace_floats(mats[i]);
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
    int64_t blocks[2] = {0, 0};
    int max_cols = 1;
    for (int x = 0; x < bt.count; ++x) {
      const int src = order[g0 + x];
      const MatIn& in = mats[src];
      const bool vec = is_vec(in);
      const Geometry g = geometry(in.rows, in.cols, vec);
      Mat& m = bt.m[x];
      m.w = in.w;
      m.u = in.u;
      m.v = in.v;
      m.rows = in.rows;
      m.cols = in.cols;
      m.n_chunks = g.n_chunks;
      m.col_tiles = g.col_tiles;
      m.rows_per_warp = g.rows_per_warp;
      m.row_tiles = g.row_tiles;
      m.tpart_off = static_cast<int>(off);
      m.rt_off = static_cast<int>(off + round4(size_t(g.n_chunks) * in.cols));
      m.rsq_off = static_cast<int>(m.rt_off + round4(in.rows));
      m.ticket_off = static_cast<int>(m.rsq_off + round4(g.row_tiles));
      off += mat_workspace_floats(in);
      m.sigma_index = src;
      m.vec = vec ? 1 : 0;
      m.begin[0] = static_cast<int>(blocks[0]);
      m.begin[1] = static_cast<int>(blocks[1]);
      blocks[0] += int64_t(g.n_chunks) * g.col_tiles;
      blocks[1] += g.row_tiles;
      max_cols = std::max(max_cols, in.cols);
    }
    if (blocks[0] > 0x7fffffff || blocks[1] > 0x7fffffff) return Status::Invalid;
    launcher.launch(colsum_kernel, dim3(static_cast<unsigned>(blocks[0])), dim3(kThreads), 0, bt);
    launcher.launch(matvec_kernel, dim3(static_cast<unsigned>(blocks[1])), dim3(kThreads),
                    size_t(std::min(max_cols, kTCols)) * sizeof(float), bt);
  }
  return Status::Ok;
}

}  // namespace
}  // namespace sagan::fused::snr
