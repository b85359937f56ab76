// The batch-norm kernels of batch_norm.cu and their launch sequences, apart
// from the launches' CUDA syntax so that they also compile as host code after
// tests/cuda/emu/cuda_emu.h: tests/test_batch_norm_emu.cpp runs the same
// sequences on the CPU emulator against the CPU backend.
//
// x (B, C, HW) contiguous (HW: the spatial dims flattened, 1 for a 2-d
// input); statistics per channel over its B * HW elements, which lie in B
// rows of HW contiguous elements at (b * C + c) * HW. Sums accumulate in
// double; the variance is the biased one around the mean (two passes over x,
// which is stable where E[x^2] - E[x]^2 cancels).
//
// Work split. One block per channel leaves most of a GPU idle when channels
// are few and long (SAGAN-128's generator: 64 channels of 64-256 x 128 x 128,
// 64 blocks on 132 SMs each walking 1-4M elements). So a channel is cut into
// slices of whole batch rows (plan_bn), a block per (channel, slice) item
// writes partial sums to a double workspace, and a later launch adds each
// channel's partials in a fixed order. The split depends only on the shape,
// never on the GPU or on timing, and no float is added atomically: results
// are bitwise reproducible. Small channels (one slice) keep one launch with a
// block per channel.
//
// Bandwidth floor (4-byte floats, H100 ~3.3 TB/s, H200 ~4.8 TB/s): the
// statistics read x twice, the normalisation reads x and writes out once,
// the backward reads x and gy twice and writes gx once. Not measured yet.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "sagan/kernels/cuda/launch.cuh"

namespace sagan::cuda {
namespace {

// Elements a slice aims at, and the most slices of one channel: enough
// blocks to fill a GPU several times over when channels are few, few
// enough partials that one warp adds them quickly.
constexpr int64_t kBnSliceElems = 16384;
constexpr int64_t kBnMaxSlices = 64;

// A channel's batch rows [0, B) in `slices` runs of rows_per_slice rows
// (the last may be shorter, none is empty).
struct BnPlan {
  int64_t slices, rows_per_slice;
};

// slice_elems is a parameter so that the emulator tests can force many
// slices on small shapes; the backend uses the default.
inline BnPlan plan_bn(int64_t batch, int64_t hw, int64_t slice_elems = kBnSliceElems) {
  slice_elems = std::max<int64_t>(slice_elems, 1);
  const int64_t want = std::clamp<int64_t>((batch * hw + slice_elems - 1) / slice_elems, 1, kBnMaxSlices);
  const int64_t rows = std::max<int64_t>((batch + want - 1) / want, 1);
  return {std::max<int64_t>((batch + rows - 1) / rows, 1), rows};
}

// Doubles of workspace the statistics or the backward need with this plan:
// two partial sums per (channel, slice); none with one slice.
inline int64_t bn_workspace_doubles(const BnPlan& plan, int64_t channels) {
  return plan.slices > 1 ? 2 * channels * plan.slices : 0;
}

// Calls f(e) for every element offset e of rows [b0, b1) of channel c, e in
// the thread's share; no division per element. Rows of at least a block's
// width: the threads stride along each row. Shorter rows: the block covers
// blockDim.x / hw rows per pass (thread t: row t / hw, column t % hw; the
// remainder threads idle). Every thread of the block calls it (the callers
// reduce across the block afterwards).
template <class F>
__device__ __forceinline__ void bn_for_slice(int64_t b0, int64_t b1, int64_t c, int64_t channels, int64_t hw, F&& f) {
  if (hw >= blockDim.x) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t base = (b * channels + c) * hw;
      for (int64_t r = threadIdx.x; r < hw; r += blockDim.x) f(base + r);
    }
  } else {
    const int h = static_cast<int>(hw);
    const int rows_at_once = static_cast<int>(blockDim.x) / h;
    const int off = static_cast<int>(threadIdx.x) / h, col = static_cast<int>(threadIdx.x) - off * h;
    if (off >= rows_at_once) return;
    const int64_t step = rows_at_once * channels * hw;  // rows_at_once rows further in this channel
    int64_t e = ((b0 + off) * channels + c) * hw + col;
    for (int64_t b = b0 + off; b < b1; b += rows_at_once, e += step) f(e);
  }
}

// Sum of p[0, n) by one whole warp, in an order fixed by n alone: lane i adds
// p[i], p[i + 32], ... in turn, then the xor butterfly of warp_sum. IEEE
// addition commutes exactly, so every lane gets the same bits, and so does
// every kernel that calls it on the same partials.
__device__ __forceinline__ double warp_ordered_total(const double* p, int64_t n) {
  double v = 0;
  for (int64_t i = threadIdx.x & 31; i < n; i += 32) v += p[i];
  return warp_sum(v);
}

// Item (channel c, slice s) of a plan: rows [b0, b1).
struct BnItem {
  int64_t c, b0, b1;
};
__device__ __forceinline__ BnItem bn_item(int64_t item, int64_t batch, int64_t slices, int64_t rows_per_slice) {
  const int64_t c = item / slices, s = item - c * slices;
  const int64_t b0 = s * rows_per_slice;
  return {c, b0, b0 + rows_per_slice < batch ? b0 + rows_per_slice : batch};
}

// ---- statistics ----

// One slice: a block per channel (grid-stride over channels), both passes.
template <class T>
__global__ void __launch_bounds__(kBlock) bn_stats_kernel(const T* x, T* mean, T* var_out, T* invstd, int64_t batch,
                                                          int64_t channels, int64_t hw, double eps) {
  __shared__ double smem[32];
  const double n = static_cast<double>(batch * hw);
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    double s = 0;
    bn_for_slice(0, batch, c, channels, hw, [&](int64_t e) { s += static_cast<double>(x[e]); });
    const double mu = block_sum(s, smem) / n;
    double q = 0;
    bn_for_slice(0, batch, c, channels, hw, [&](int64_t e) {
      const double d = static_cast<double>(x[e]) - mu;
      q += d * d;
    });
    const double var = block_sum(q, smem) / n;
    if (threadIdx.x == 0) {
      mean[c] = static_cast<T>(mu);
      var_out[c] = static_cast<T>(var);
      invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
    }
  }
}

// Slices, pass 1: ws[c * slices + s] = sum of x over slice s of channel c.
template <class T>
__global__ void __launch_bounds__(kBlock) bn_stats_sum_kernel(const T* x, double* ws, int64_t batch, int64_t channels,
                                                              int64_t hw, int64_t slices, int64_t rows_per_slice) {
  __shared__ double smem[32];
  for (int64_t item = blockIdx.x; item < channels * slices; item += gridDim.x) {
    const BnItem it = bn_item(item, batch, slices, rows_per_slice);
    double s = 0;
    bn_for_slice(it.b0, it.b1, it.c, channels, hw, [&](int64_t e) { s += static_cast<double>(x[e]); });
    s = block_sum(s, smem);
    if (threadIdx.x == 0) ws[item] = s;
  }
}

// Slices, pass 2: ws2[c * slices + s] = sum of (x - mean_c)^2 over the
// slice, mean_c from pass 1's partials by warp 0 (the same helper and
// division as bn_stats_finalize_kernel, so the mean written there is bitwise
// the one centred on here).
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_stats_sq_kernel(const T* x, const double* ws, double* ws2, int64_t batch, int64_t channels, int64_t hw,
                       int64_t slices, int64_t rows_per_slice) {
  __shared__ double smem[32];
  __shared__ double mean_s;
  const double n = static_cast<double>(batch * hw);
  for (int64_t item = blockIdx.x; item < channels * slices; item += gridDim.x) {
    const BnItem it = bn_item(item, batch, slices, rows_per_slice);
    if (threadIdx.x < 32) {
      const double mu = warp_ordered_total(ws + it.c * slices, slices) / n;
      if (threadIdx.x == 0) mean_s = mu;
    }
    __syncthreads();
    const double mu = mean_s;
    double q = 0;
    bn_for_slice(it.b0, it.b1, it.c, channels, hw, [&](int64_t e) {
      const double d = static_cast<double>(x[e]) - mu;
      q += d * d;
    });
    // block_sum's barriers also keep warp 0 from overwriting mean_s for the
    // next item before every thread has read it.
    q = block_sum(q, smem);
    if (threadIdx.x == 0) ws2[item] = q;
  }
}

// Slices, pass 3: a warp per channel adds its partials; writes mean, the
// biased var and invstd = 1 / sqrt(var + eps).
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_stats_finalize_kernel(const double* ws, const double* ws2, T* mean, T* var_out, T* invstd, int64_t channels,
                             int64_t slices, double n, double eps) {
  const int64_t warps = thread_count() >> 5;
  for (int64_t c = thread_index() >> 5; c < channels; c += warps) {  // uniform per warp
    const double mu = warp_ordered_total(ws + c * slices, slices) / n;
    const double var = warp_ordered_total(ws2 + c * slices, slices) / n;
    if ((threadIdx.x & 31) == 0) {
      mean[c] = static_cast<T>(mu);
      var_out[c] = static_cast<T>(var);
      invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
    }
  }
}

// ---- normalisation: out = (x - mean[c]) * invstd[c], in T ----

// Short rows (hw < kBlock): a thread per element, the channel from its index.
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_normalize_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride, T* out,
                        int64_t channels, int64_t hw, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t c = (i / hw) % channels;
    out[i] = (x[i] - mean[c * mean_stride]) * invstd[c * invstd_stride];
  }
}

// Rows of at least a block's width: a block per (b, c) row (grid-stride), one
// division per row.
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_normalize_rows_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride,
                             T* out, int64_t channels, int64_t hw, int64_t rows) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t c = row % channels;
    const T mu = mean[c * mean_stride], is = invstd[c * invstd_stride];
    const int64_t base = row * hw;
    for (int64_t r = threadIdx.x; r < hw; r += blockDim.x) out[base + r] = (x[base + r] - mu) * is;
  }
}

// ---- backward ----
// gx = invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), xhat = (x - mean) * invstd.

// One slice: a block per channel, sums then gx.
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_backward_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride,
                       const T* gy, T* gx, int64_t batch, int64_t channels, int64_t hw) {
  __shared__ double smem[32];
  const double n = static_cast<double>(batch * hw);
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const double mu = static_cast<double>(mean[c * mean_stride]);
    const double is = static_cast<double>(invstd[c * invstd_stride]);
    double sg = 0, sgx = 0;
    bn_for_slice(0, batch, c, channels, hw, [&](int64_t e) {
      const double g = static_cast<double>(gy[e]);
      sg += g;
      sgx += g * (static_cast<double>(x[e]) - mu) * is;
    });
    const double mg = block_sum(sg, smem) / n;
    const double mgx = block_sum(sgx, smem) / n;
    bn_for_slice(0, batch, c, channels, hw, [&](int64_t e) {
      const double xhat = (static_cast<double>(x[e]) - mu) * is;
      gx[e] = static_cast<T>(is * (static_cast<double>(gy[e]) - mg - xhat * mgx));
    });
  }
}

// Slices, pass 1: the slice's sum of gy and of gy * xhat.
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_backward_sum_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride,
                           const T* gy, double* ws_g, double* ws_gx, int64_t batch, int64_t channels, int64_t hw,
                           int64_t slices, int64_t rows_per_slice) {
  __shared__ double smem[32];
  for (int64_t item = blockIdx.x; item < channels * slices; item += gridDim.x) {
    const BnItem it = bn_item(item, batch, slices, rows_per_slice);
    const double mu = static_cast<double>(mean[it.c * mean_stride]);
    const double is = static_cast<double>(invstd[it.c * invstd_stride]);
    double sg = 0, sgx = 0;
    bn_for_slice(it.b0, it.b1, it.c, channels, hw, [&](int64_t e) {
      const double g = static_cast<double>(gy[e]);
      sg += g;
      sgx += g * (static_cast<double>(x[e]) - mu) * is;
    });
    sg = block_sum(sg, smem);
    sgx = block_sum(sgx, smem);
    if (threadIdx.x == 0) {
      ws_g[item] = sg;
      ws_gx[item] = sgx;
    }
  }
}

// Slices, pass 2: warp 0 adds the channel's partials (every block of the
// channel gets the same bits), then the block writes gx over its slice.
template <class T>
__global__ void __launch_bounds__(kBlock)
    bn_backward_apply_kernel(const T* x, const T* mean, int64_t mean_stride, const T* invstd, int64_t invstd_stride,
                             const T* gy, T* gx, const double* ws_g, const double* ws_gx, int64_t batch,
                             int64_t channels, int64_t hw, int64_t slices, int64_t rows_per_slice) {
  __shared__ double means[2];
  const double n = static_cast<double>(batch * hw);
  for (int64_t item = blockIdx.x; item < channels * slices; item += gridDim.x) {
    const BnItem it = bn_item(item, batch, slices, rows_per_slice);
    if (threadIdx.x < 32) {
      const double mg = warp_ordered_total(ws_g + it.c * slices, slices) / n;
      const double mgx = warp_ordered_total(ws_gx + it.c * slices, slices) / n;
      if (threadIdx.x == 0) {
        means[0] = mg;
        means[1] = mgx;
      }
    }
    __syncthreads();
    const double mg = means[0], mgx = means[1];
    const double mu = static_cast<double>(mean[it.c * mean_stride]);
    const double is = static_cast<double>(invstd[it.c * invstd_stride]);
    bn_for_slice(it.b0, it.b1, it.c, channels, hw, [&](int64_t e) {
      const double xhat = (static_cast<double>(x[e]) - mu) * is;
      gx[e] = static_cast<T>(is * (static_cast<double>(gy[e]) - mg - xhat * mgx));
    });
    __syncthreads();  // every thread has read means before warp 0 writes the next item's
  }
}

// ---- launch sequences ----
// launch(kernel, "kernel_name", grid, args...) launches kernel with kBlock
// threads on grid blocks (gridDim.x only) and checks it: batch_norm.cu's
// callable launches on the backend's stream, the emulator test's runs the
// kernel on the CPU, so both run exactly this sequence. max_grid caps every
// grid (tests pass a small one to make blocks stride over their items).
// ws: bn_workspace_doubles(plan, channels) doubles, written before read.

inline unsigned bn_grid(unsigned grid, int64_t max_grid) {
  return static_cast<unsigned>(std::clamp<int64_t>(std::min<int64_t>(grid, max_grid), 1, kMaxBlocks));
}

template <class T, class Launch>
void bn_stats_launches(Launch&& launch, const BnPlan& plan, const T* x, T* mean, T* var, T* invstd, double* ws,
                       int64_t batch, int64_t channels, int64_t hw, double eps, int64_t max_grid = kMaxBlocks) {
  if (plan.slices == 1) {
    launch(&bn_stats_kernel<T>, "bn_stats_kernel", bn_grid(grid_for_rows(channels), max_grid), x, mean, var, invstd,
           batch, channels, hw, eps);
    return;
  }
  const int64_t items = channels * plan.slices;
  double* ws2 = ws + items;
  const unsigned grid = bn_grid(grid_for_rows(items), max_grid);
  launch(&bn_stats_sum_kernel<T>, "bn_stats_sum_kernel", grid, x, ws, batch, channels, hw, plan.slices,
         plan.rows_per_slice);
  launch(&bn_stats_sq_kernel<T>, "bn_stats_sq_kernel", grid, x, static_cast<const double*>(ws), ws2, batch, channels,
         hw, plan.slices, plan.rows_per_slice);
  launch(&bn_stats_finalize_kernel<T>, "bn_stats_finalize_kernel", bn_grid(blocks_for(channels * 32), max_grid),
         static_cast<const double*>(ws), static_cast<const double*>(ws2), mean, var, invstd, channels, plan.slices,
         static_cast<double>(batch * hw), eps);
}

template <class T, class Launch>
void bn_normalize_launches(Launch&& launch, const T* x, const T* mean, int64_t mean_stride, const T* invstd,
                           int64_t invstd_stride, T* out, int64_t batch, int64_t channels, int64_t hw,
                           int64_t max_grid = kMaxBlocks) {
  const int64_t rows = batch * channels;
  if (hw >= kBlock)
    launch(&bn_normalize_rows_kernel<T>, "bn_normalize_rows_kernel", bn_grid(grid_for_rows(rows), max_grid), x, mean,
           mean_stride, invstd, invstd_stride, out, channels, hw, rows);
  else
    launch(&bn_normalize_kernel<T>, "bn_normalize_kernel", bn_grid(blocks_for(rows * hw), max_grid), x, mean,
           mean_stride, invstd, invstd_stride, out, channels, hw, rows * hw);
}

template <class T, class Launch>
void bn_backward_launches(Launch&& launch, const BnPlan& plan, const T* x, const T* mean, int64_t mean_stride,
                          const T* invstd, int64_t invstd_stride, const T* gy, T* gx, double* ws, int64_t batch,
                          int64_t channels, int64_t hw, int64_t max_grid = kMaxBlocks) {
  if (plan.slices == 1) {
    launch(&bn_backward_kernel<T>, "bn_backward_kernel", bn_grid(grid_for_rows(channels), max_grid), x, mean,
           mean_stride, invstd, invstd_stride, gy, gx, batch, channels, hw);
    return;
  }
  const int64_t items = channels * plan.slices;
  double* ws_gx = ws + items;
  const unsigned grid = bn_grid(grid_for_rows(items), max_grid);
  launch(&bn_backward_sum_kernel<T>, "bn_backward_sum_kernel", grid, x, mean, mean_stride, invstd, invstd_stride, gy,
         ws, ws_gx, batch, channels, hw, plan.slices, plan.rows_per_slice);
  launch(&bn_backward_apply_kernel<T>, "bn_backward_apply_kernel", grid, x, mean, mean_stride, invstd, invstd_stride,
         gy, gx, static_cast<const double*>(ws), static_cast<const double*>(ws_gx), batch, channels, hw, plan.slices,
         plan.rows_per_slice);
}

}  // namespace
}  // namespace sagan::cuda
