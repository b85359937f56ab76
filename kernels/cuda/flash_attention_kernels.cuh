// Fused attention kernels, float32: O = softmax(Q K^T) V per batch, no
// 1/sqrt(d) scaling, and its backward. q (B,N,d), k (B,S,d), v (B,S,dv),
// out (B,N,dv), lse (B,N), all contiguous. The N x S score matrix never goes
// to global memory. Design notes: docs/kernels.md.
//
// Included by flash_attention_fwd.cu / flash_attention_bwd.cu (nvcc) and by
// the emulated CPU tests (tests/test_flash_attention_emu.cpp). The dispatch
// functions at the end take a Launcher so that both share grid and shared-
// memory sizing: launcher.launch(kernel, grid, block, smem_bytes, args...),
// launcher.zero(float* p, size_t n), launcher.num_sms().
#pragma once
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/fused_common.cuh"

namespace sagan::fused::fa {
// Internal linkage for everything below: this header is compiled into two
// CUDA translation units (flash_attention_fwd.cu, _bwd.cu) and, as plain host
// code, into the emulator tests, which link against the engine. With
// external linkage the kernels' host stubs and the emulated host functions
// would share mangled names: duplicate definitions for non-template kernels,
// and template instantiations silently merged by the linker (an emulated
// test could end up calling a CUDA launch stub). Each translation unit gets
// its own copy instead.
namespace {

// Tile sizes of the tiled kernels: 64 queries x 64 keys per step, 256
// threads as a 16 x 16 grid, each thread owning a 4 x 4 block of scores.
constexpr int kBQ = 64;
constexpr int kBK = 64;
constexpr int kThreads = 256;
constexpr int kDvChunk = 64;  // dv columns per step of dP = dO V^T (backward)
constexpr int kMaxD = 128;
// Blocks per SM the tiled kernels ask the register allocator for: two
// (128 registers a thread) where their shared memory lets two fit, one at
// d = 128, whose 115-180 KB of shared memory holds one block per SM anyway
// and whose code spilled under the two-block cap.
template <int DP>
constexpr int kMinBlocks = DP >= 128 ? 1 : 2;
static_assert(kBQ == kBK, "mma_p_times_m serves P (queries x keys) and P^T (keys x queries)");

// Head sizes round up to a compiled tile width; zero-padded columns add
// nothing to dot products. The dK/dQ kernel spreads d over 16 lanes, so its
// narrowest width is 16; the others also compile 8 (SAGAN's D at 64x64 has
// d = 64/8 = 8).
inline int padded_d(int d) { return d <= 16 ? 16 : d <= 32 ? 32 : d <= 64 ? 64 : d <= kMaxD ? 128 : 0; }
inline int padded_d_narrow(int d) { return d <= 8 ? 8 : padded_d(d); }
// Output columns per thread: 4 (a 64-column tile) for small dv, 8 (128) for
// larger dv, which halves the number of times Q K^T is recomputed per row.
inline int cols_per_thread(int dv) { return dv <= 64 ? 4 : 8; }

// ---------------------------------------------------------------------------
// Forward, version 1: one warp per query row, keys across lanes in chunks of
// 32, online softmax, each lane owning dv columns lane + 32c. Simple and a
// baseline for the tiled version; d <= 128, dv <= 32 * CPL.
// ---------------------------------------------------------------------------
constexpr int kRowWarps = 4;

template <int CPL>
__global__ void __launch_bounds__(kRowWarps * 32)
    fwd_rowwarp_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                       float* __restrict__ out, float* __restrict__ lse, int64_t rows, int N, int S, int d, int dv) {
  __shared__ float qs[kRowWarps][kMaxD];
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowWarps + warp;
  if (row >= rows) return;  // the whole warp leaves together
  const int64_t b = row / N;
  const float* kb = k + b * S * d;
  const float* vb = v + b * S * dv;
  for (int e = lane; e < d; e += 32) qs[warp][e] = q[row * d + e];
  __syncwarp();

  float m = -INFINITY, l = 0.f, acc[CPL];
  SAGAN_UNROLL
  for (int c = 0; c < CPL; ++c) acc[c] = 0.f;
  for (int k0 = 0; k0 < S; k0 += 32) {
    const int key = k0 + lane;
    float s = -INFINITY;
    if (key < S) {
      float dot = 0.f;
      const float* kr = kb + static_cast<int64_t>(key) * d;
      for (int e = 0; e < d; ++e) dot = fmaf(qs[warp][e], kr[e], dot);
      s = dot * kLog2e;
    }
    const float mnew = fmaxf(m, group_max<32>(s));  // finite: key k0 < S
    const float alpha = exp2f(m - mnew);
    const float p = exp2f(s - mnew);
    l = l * alpha + group_sum<32>(p);
    m = mnew;
    SAGAN_UNROLL
    for (int c = 0; c < CPL; ++c) acc[c] *= alpha;
    const int nk = S - k0 < 32 ? S - k0 : 32;
    for (int j = 0; j < nk; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      const float* vr = vb + static_cast<int64_t>(k0 + j) * dv;
      SAGAN_UNROLL
      for (int c = 0; c < CPL; ++c)
        if (lane + 32 * c < dv) acc[c] = fmaf(pj, vr[lane + 32 * c], acc[c]);
    }
  }
  const float inv = 1.f / l;
  SAGAN_UNROLL
  for (int c = 0; c < CPL; ++c)
    if (lane + 32 * c < dv) out[row * dv + lane + 32 * c] = acc[c] * inv;
  if (lane == 0) lse[row] = (m + log2f(l)) * kLn2;
}

// ---------------------------------------------------------------------------
// Shared pieces of the tiled kernels.
// ---------------------------------------------------------------------------

// tile[r][e] (row stride DP + 4) = src row (r0 + r), column e, zero outside
// rows < nrows and columns < ncols. The +4 pad makes the row stride an odd
// number of 16-byte units, so 16-byte reads of 8 different rows by 8 lanes
// hit 8 different bank groups.
template <int DP>
__device__ __forceinline__ void load_rows(float* tile, const float* src, int r0, int nrows, int ncols,
                                          int rows_in_tile) {
  constexpr int RS = DP + 4;
  for (int idx = static_cast<int>(threadIdx.x); idx < rows_in_tile * DP; idx += kThreads) {
    const int r = idx / DP, e = idx % DP;
    float val = 0.f;
    if (r0 + r < nrows && e < ncols) val = src[static_cast<int64_t>(r0 + r) * ncols + e];
    tile[r * RS + e] = val;
  }
}

// tile[r][c] (row stride RS) = src[(r0 + r) * ld + c0 + c] for c < W, zero
// outside rows < nrows and columns c0 + c < ncols.
template <int W, int RS>
__device__ __forceinline__ void load_cols(float* tile, const float* src, int r0, int nrows, int c0, int ncols,
                                          int64_t ld, int rows_in_tile) {
  for (int idx = static_cast<int>(threadIdx.x); idx < rows_in_tile * W; idx += kThreads) {
    const int r = idx / W, c = idx % W;
    float val = 0.f;
    if (r0 + r < nrows && c0 + c < ncols) val = src[static_cast<int64_t>(r0 + r) * ld + c0 + c];
    tile[r * RS + c] = val;
  }
}

// load_rows / load_cols issued as cp.async copies (the caller commits and
// waits).
template <int DP>
__device__ __forceinline__ void load_rows_async(float* tile, const float* src, int r0, int nrows, int ncols,
                                                int rows_in_tile) {
  constexpr int RS = DP + 4;
  for (int idx = static_cast<int>(threadIdx.x); idx < rows_in_tile * DP; idx += kThreads) {
    const int r = idx / DP, e = idx % DP;
    const bool ok = r0 + r < nrows && e < ncols;
    cp_async4(tile + r * RS + e, ok ? src + static_cast<int64_t>(r0 + r) * ncols + e : src, ok);
  }
}
template <int W, int RS>
__device__ __forceinline__ void load_cols_async(float* tile, const float* src, int r0, int nrows, int c0, int ncols,
                                                int64_t ld, int rows_in_tile) {
  for (int idx = static_cast<int>(threadIdx.x); idx < rows_in_tile * W; idx += kThreads) {
    const int r = idx / W, c = idx % W;
    const bool ok = r0 + r < nrows && c0 + c < ncols;
    cp_async4(tile + r * RS + c, ok ? src + static_cast<int64_t>(r0 + r) * ld + c0 + c : src, ok);
  }
}

// acc[i][j] += sum_e A[ra + i][e] * B[rb + 16 j][e] over e < DP: a 4 x 4
// block of a (64 x DP) x (DP x 64) product, A rows 4 consecutive (a
// broadcast within each half warp), B rows strided by 16 (one per lane).
template <int DP>
__device__ __forceinline__ void mma_4x4_rows(float (&acc)[4][4], const float* A, int ra, const float* B, int rb) {
  constexpr int RS = DP + 4;
  SAGAN_UNROLL
  for (int e = 0; e < DP; e += 4) {
    float4 a[4], b[4];
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) a[i] = ld4(A + (ra + i) * RS + e);
    SAGAN_UNROLL
    for (int j = 0; j < 4; ++j) b[j] = ld4(B + (rb + 16 * j) * RS + e);
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) SAGAN_UNROLL
    for (int j = 0; j < 4; ++j) {
      acc[i][j] = fmaf(a[i].x, b[j].x, acc[i][j]);
      acc[i][j] = fmaf(a[i].y, b[j].y, acc[i][j]);
      acc[i][j] = fmaf(a[i].z, b[j].z, acc[i][j]);
      acc[i][j] = fmaf(a[i].w, b[j].w, acc[i][j]);
    }
  }
}

// acc[i][4h + u] += sum_x P[r + i][x] * M[x][c + 64 h + u] over x < 64: P
// (row stride 68) times a row-major M (row stride MS); the thread owns rows
// r..r+3 and columns c + 64 h + 0..3.
template <int CPT, int MS>
__device__ __forceinline__ void mma_p_times_m(float (&acc)[4][CPT], const float* P, int r, const float* M, int c) {
  constexpr int PS = kBK + 4;
  SAGAN_UNROLL_N(4)
  for (int x = 0; x < kBK; x += 4) {
    float4 p4[4];
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) p4[i] = ld4(P + (r + i) * PS + x);
    SAGAN_UNROLL
    for (int u = 0; u < 4; ++u) {
      float4 m4[CPT / 4];
      SAGAN_UNROLL
      for (int h = 0; h < CPT / 4; ++h) m4[h] = ld4(M + (x + u) * MS + c + 64 * h);
      SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) {
        const float p = comp(p4[i], u);
        SAGAN_UNROLL
        for (int h = 0; h < CPT / 4; ++h) {
          acc[i][4 * h + 0] = fmaf(p, m4[h].x, acc[i][4 * h + 0]);
          acc[i][4 * h + 1] = fmaf(p, m4[h].y, acc[i][4 * h + 1]);
          acc[i][4 * h + 2] = fmaf(p, m4[h].z, acc[i][4 * h + 2]);
          acc[i][4 * h + 3] = fmaf(p, m4[h].w, acc[i][4 * h + 3]);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Forward, version 2 (mainline): a block owns 64 queries x DVT = 16 CPT
// output columns of one batch and streams all keys in tiles of 64 with an
// online softmax. grid = (B * ceil(N/64), ceil(dv/DVT)).
// Version 3 (ASYNC = true): the same with the K and V tiles double-buffered
// and fetched by cp.async one tile ahead, so the loads of tile t+1 overlap
// the arithmetic of tile t (more shared memory, same registers).
// ---------------------------------------------------------------------------
template <int DP, int CPT, bool ASYNC = false>
constexpr size_t fwd_smem_floats() {
  constexpr size_t nbuf = ASYNC ? 2 : 1;
  return size_t(kBQ) * (DP + 4) + nbuf * (size_t(kBK) * (DP + 4) + size_t(kBK) * 16 * CPT) + size_t(kBQ) * (kBK + 4);
}

template <int DP, int CPT, bool ASYNC>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DP>)
    fwd_tiled_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                     float* __restrict__ out, float* __restrict__ lse, int N, int S, int d, int dv, int n_qt) {
  constexpr int DVT = 16 * CPT;
  constexpr int RS = DP + 4;
  constexpr int PS = kBK + 4;
  constexpr int NBUF = ASYNC ? 2 : 1;
  SAGAN_DYNAMIC_SMEM(float, smem);
  float* Qs = smem;                   // [kBQ][RS]
  float* Kb = Qs + kBQ * RS;          // [NBUF][kBK][RS]
  float* Vb = Kb + NBUF * kBK * RS;   // [NBUF][kBK][DVT]
  float* Ps = Vb + NBUF * kBK * DVT;  // [kBQ][PS]

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int64_t b = blockIdx.x / n_qt;
  const int q0 = static_cast<int>(blockIdx.x % n_qt) * kBQ;
  const int c0 = static_cast<int>(blockIdx.y) * DVT;
  const float* kb = k + b * S * d;
  const float* vb = v + b * S * dv;
  load_rows<DP>(Qs, q + b * N * d, q0, N, d, kBQ);

  float m[4], l[4], acc[4][CPT];
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
    SAGAN_UNROLL
    for (int c = 0; c < CPT; ++c) acc[i][c] = 0.f;
  }

  if (ASYNC) {
    load_rows_async<DP>(Kb, kb, 0, S, d, kBK);
    load_cols_async<DVT, DVT>(Vb, vb, 0, S, c0, dv, dv, kBK);
    cp_async_commit();
  }
  for (int k0 = 0, t = 0; k0 < S; k0 += kBK, ++t) {
    float* Ks = Kb + (t % NBUF) * kBK * RS;
    float* Vs = Vb + (t % NBUF) * kBK * DVT;
    // All threads have finished step t-1 (its reads of Ps and of the buffer
    // that the prefetch below overwrites).
    __syncthreads();
    if (ASYNC) {
      if (k0 + kBK < S) {
        load_rows_async<DP>(Kb + ((t + 1) % NBUF) * kBK * RS, kb, k0 + kBK, S, d, kBK);
        load_cols_async<DVT, DVT>(Vb + ((t + 1) % NBUF) * kBK * DVT, vb, k0 + kBK, S, c0, dv, dv, kBK);
        cp_async_commit();
        cp_async_wait<1>();  // this thread's copies of tile t have landed
      } else {
        cp_async_wait<0>();
      }
    } else {
      load_rows<DP>(Ks, kb, k0, S, d, kBK);
      load_cols<DVT, DVT>(Vs, vb, k0, S, c0, dv, dv, kBK);
    }
    __syncthreads();  // ... and every thread's

    float s[4][4];
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) SAGAN_UNROLL
    for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
    mma_4x4_rows<DP>(s, Qs, ty * 4, Ks, tx);

    // Online softmax in base 2; each row's 64 scores live in 16 lanes.
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) {
      float mx = -INFINITY;
      SAGAN_UNROLL
      for (int j = 0; j < 4; ++j) {
        s[i][j] = (k0 + tx + 16 * j < S) ? s[i][j] * kLog2e : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      // Every tile holds at least one real key, so mnew is finite and
      // exp2f(-inf - mnew) = 0 handles both the first tile and masked keys.
      const float mnew = fmaxf(m[i], group_max<16>(mx));
      const float alpha = exp2f(m[i] - mnew);
      float rs = 0.f;
      SAGAN_UNROLL
      for (int j = 0; j < 4; ++j) {
        s[i][j] = exp2f(s[i][j] - mnew);
        rs += s[i][j];
      }
      l[i] = l[i] * alpha + group_sum<16>(rs);
      m[i] = mnew;
      SAGAN_UNROLL
      for (int c = 0; c < CPT; ++c) acc[i][c] *= alpha;
      SAGAN_UNROLL
      for (int j = 0; j < 4; ++j) Ps[(ty * 4 + i) * PS + tx + 16 * j] = s[i][j];
    }
    __syncthreads();
    mma_p_times_m<CPT, DVT>(acc, Ps, ty * 4, Vs, tx * 4);
  }

  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) {
    const int row = q0 + ty * 4 + i;
    if (row >= N) continue;
    const float inv = 1.f / l[i];
    float* orow = out + (b * N + row) * dv;
    SAGAN_UNROLL
    for (int h = 0; h < CPT / 4; ++h) SAGAN_UNROLL
    for (int u = 0; u < 4; ++u) {
      const int col = c0 + 64 * h + tx * 4 + u;
      if (col < dv) orow[col] = acc[i][4 * h + u] * inv;
    }
    if (blockIdx.y == 0 && tx == 0) lse[b * N + row] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// ---------------------------------------------------------------------------
// Backward. With P = exp(S - lse) recomputed from the saved lse:
//   D_i = sum_c dO_ic O_ic,  dV = P^T dO,  dP = dO V^T,  dS = P * (dP - D),
//   dQ = dS K,  dK = dS^T Q.
// Three kernels: D (one warp per row), dV (a block per key tile and dv tile,
// looping over queries), dK and dQ (a block per key tile, looping over
// queries; dP summed over dv in chunks; dQ by float atomics). When few
// blocks would fill the GPU the query loop is split over grid.z / grid.y and
// dV / dK are accumulated by atomics too (outputs zeroed first).
// Deterministic (the default, settings.h): no float atomics. The query loops
// are never split, the dK kernel leaves dQ alone, and a fourth kernel, dq (a
// block per query tile, looping over the key tiles in order), recomputes P
// and dP to sum dQ = dS K in registers: S and dP are computed twice, about
// 1.4x the FLOPs of the atomic backward, for bitwise repeatable gradients.
// ---------------------------------------------------------------------------
constexpr int kDotWarps = 8;

__global__ void __launch_bounds__(kDotWarps * 32)
    bwd_dot_kernel(const float* __restrict__ gout, const float* __restrict__ out, float* __restrict__ D, int64_t rows,
                   int dv) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kDotWarps + static_cast<int>(threadIdx.x) / 32;
  if (row >= rows) return;
  const float* g = gout + row * dv;
  const float* o = out + row * dv;
  float s = 0.f;
  for (int c = lane; c < dv; c += 32) s = fmaf(g[c], o[c], s);
  s = group_sum<32>(s);
  if (lane == 0) D[row] = s;
}

template <int DP, int CPT>
constexpr size_t bwd_dv_smem_floats() {
  return size_t(kBK) * (DP + 4) + size_t(kBQ) * (DP + 4) + kBQ + size_t(kBQ) * 16 * CPT + size_t(kBK) * (kBQ + 4);
}

// dV tile (64 keys x DVT columns) = sum over query tiles of P^T dO.
// grid = (B * n_kt, ceil(dv/DVT), q_split).
template <int DP, int CPT>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DP>)
    bwd_dv_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ lse,
                  const float* __restrict__ gout, float* __restrict__ gv, int N, int S, int d, int dv, int n_kt) {
  constexpr int DVT = 16 * CPT;
  constexpr int RS = DP + 4;
  constexpr int PS = kBQ + 4;
  SAGAN_DYNAMIC_SMEM(float, smem);
  float* Ks = smem;            // [kBK][RS]
  float* Qs = Ks + kBK * RS;   // [kBQ][RS]
  float* L2s = Qs + kBQ * RS;  // [kBQ] lse in base 2, +inf past N
  float* Gs = L2s + kBQ;       // [kBQ][DVT] dO tile
  float* Pt = Gs + kBQ * DVT;  // [kBK][PS] P^T tile

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int64_t b = blockIdx.x / n_kt;
  const int k0 = static_cast<int>(blockIdx.x % n_kt) * kBK;
  const int c0 = static_cast<int>(blockIdx.y) * DVT;
  const int n_qt = ceil_div(N, kBQ);
  const float* qb = q + b * N * d;
  const float* gb = gout + b * N * dv;
  load_rows<DP>(Ks, k + b * S * d, k0, S, d, kBK);

  float acc[4][CPT];
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) SAGAN_UNROLL
  for (int c = 0; c < CPT; ++c) acc[i][c] = 0.f;

  for (int qt = static_cast<int>(blockIdx.z); qt < n_qt; qt += static_cast<int>(gridDim.z)) {
    const int q0 = qt * kBQ;
    __syncthreads();
    load_rows<DP>(Qs, qb, q0, N, d, kBQ);
    load_cols<DVT, DVT>(Gs, gb, q0, N, c0, dv, dv, kBQ);
    for (int r = tid; r < kBQ; r += kThreads) L2s[r] = (q0 + r < N) ? lse[b * N + q0 + r] * kLog2e : INFINITY;
    __syncthreads();

    // P^T[key][query], keys ty*4 + i, queries tx + 16 j.
    float st[4][4];
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) SAGAN_UNROLL
    for (int j = 0; j < 4; ++j) st[i][j] = 0.f;
    mma_4x4_rows<DP>(st, Ks, ty * 4, Qs, tx);
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) {
      const bool key_ok = k0 + ty * 4 + i < S;
      SAGAN_UNROLL
      for (int j = 0; j < 4; ++j) {
        const float p = key_ok ? exp2f(fmaf(st[i][j], kLog2e, -L2s[tx + 16 * j])) : 0.f;
        Pt[(ty * 4 + i) * PS + tx + 16 * j] = p;
      }
    }
    __syncthreads();
    mma_p_times_m<CPT, DVT>(acc, Pt, ty * 4, Gs, tx * 4);
  }

  const bool accumulate = gridDim.z > 1;
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) {
    const int key = k0 + ty * 4 + i;
    if (key >= S) continue;
    float* row = gv + (b * S + key) * dv;
    SAGAN_UNROLL
    for (int h = 0; h < CPT / 4; ++h) SAGAN_UNROLL
    for (int u = 0; u < 4; ++u) {
      const int col = c0 + 64 * h + tx * 4 + u;
      if (col >= dv) continue;
      if (accumulate)
        atomicAdd(row + col, acc[i][4 * h + u]);
      else
        row[col] = acc[i][4 * h + u];
    }
  }
}

template <int DP>
constexpr size_t bwd_dkdq_smem_floats() {
  return size_t(kBK) * (DP + 4) + size_t(kBQ) * (DP + 4) + 2 * kBQ + size_t(kBQ) * (kDvChunk + 4) +
         size_t(kBK) * (kDvChunk + 4) + size_t(kBQ) * (kBK + 4);
}

// The shared-memory tiles of bwd_dkdq_kernel and bwd_dq_kernel, carved from
// bwd_dkdq_smem_floats<DP>() floats.
struct BwdTiles {
  float* Ks;   // [kBK][DP + 4]
  float* Qs;   // [kBQ][DP + 4]
  float* L2s;  // [kBQ] lse in base 2, +inf past N
  float* Ds;   // [kBQ] rowsum(dO * O), 0 past N
  float* Gc;   // [kBQ][kDvChunk + 4] dO chunk
  float* Vc;   // [kBK][kDvChunk + 4] V chunk
  float* dSs;  // [kBQ][kBK + 4]
};

template <int DP>
__device__ __forceinline__ BwdTiles bwd_tiles(float* smem) {
  constexpr int RS = DP + 4, CS = kDvChunk + 4;
  BwdTiles t;
  t.Ks = smem;
  t.Qs = t.Ks + kBK * RS;
  t.L2s = t.Qs + kBQ * RS;
  t.Ds = t.L2s + kBQ;
  t.Gc = t.Ds + kBQ;
  t.Vc = t.Gc + kBQ * CS;
  t.dSs = t.Vc + kBK * CS;
  return t;
}

// L2s and Ds of the query tile at q0 of batch element b.
__device__ __forceinline__ void load_row_stats(const BwdTiles& t, const float* lse, const float* D, int64_t b, int N,
                                               int q0) {
  for (int r = static_cast<int>(threadIdx.x); r < kBQ; r += kThreads) {
    const bool ok = q0 + r < N;
    t.L2s[r] = ok ? lse[b * N + q0 + r] * kLog2e : INFINITY;
    t.Ds[r] = ok ? D[b * N + q0 + r] : 0.f;
  }
}

// dS = P * (dP - D) for one (64-query, 64-key) tile pair into dSs [query][key]
// (row stride kBK + 4): P = exp(Q K^T - lse) from the tiles in shared memory,
// dP = dO V^T over all dv in chunks of kDvChunk through Gc and Vc. Thread
// (ty, tx) owns queries ty*4 + i and keys tx + 16 j. Starts and ends without
// a barrier after its last write: callers sync before reading dSs.
template <int DP>
__device__ __forceinline__ void bwd_ds_tile(const BwdTiles& t, const float* gb, const float* vb, int q0, int k0, int N,
                                            int S, int dv) {
  float *dSs = t.dSs, *Gc = t.Gc, *Vc = t.Vc;
  const float *Qs = t.Qs, *Ks = t.Ks, *L2s = t.L2s, *Ds = t.Ds;
  constexpr int CS = kDvChunk + 4;
  constexpr int PS = kBK + 4;
  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  // P waits in dSs (each thread rereads only its own elements) to free
  // registers for dP.
  {
    float p[4][4];
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) SAGAN_UNROLL
    for (int j = 0; j < 4; ++j) p[i][j] = 0.f;
    mma_4x4_rows<DP>(p, Qs, ty * 4, Ks, tx);
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) SAGAN_UNROLL
    for (int j = 0; j < 4; ++j)
      dSs[(ty * 4 + i) * PS + tx + 16 * j] =
          (k0 + tx + 16 * j < S) ? exp2f(fmaf(p[i][j], kLog2e, -L2s[ty * 4 + i])) : 0.f;
  }
  float dp[4][4];
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) SAGAN_UNROLL
  for (int j = 0; j < 4; ++j) dp[i][j] = 0.f;
  for (int c0 = 0; c0 < dv; c0 += kDvChunk) {
    __syncthreads();  // the previous chunk has been read
    load_cols<kDvChunk, CS>(Gc, gb, q0, N, c0, dv, dv, kBQ);
    load_cols<kDvChunk, CS>(Vc, vb, k0, S, c0, dv, dv, kBK);
    __syncthreads();
    mma_4x4_rows<kDvChunk>(dp, Gc, ty * 4, Vc, tx);
  }
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) SAGAN_UNROLL
  for (int j = 0; j < 4; ++j) {
    float* ds = dSs + (ty * 4 + i) * PS + tx + 16 * j;
    *ds = *ds * (dp[i][j] - Ds[ty * 4 + i]);
  }
}

// dq[i][j] += sum_key dS[ty*4 + i][key] K[key][tx + 16 j] over one key tile.
template <int DP>
__device__ __forceinline__ void bwd_accumulate_dq(float (&dq)[4][DP / 16], const float* dSs, const float* Ks) {
  constexpr int RS = DP + 4;
  constexpr int PS = kBK + 4;
  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  for (int x = 0; x < kBK; x += 4) {
    float4 s4[4];
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) s4[i] = ld4(dSs + (ty * 4 + i) * PS + x);
    SAGAN_UNROLL
    for (int u = 0; u < 4; ++u) SAGAN_UNROLL
    for (int j = 0; j < DP / 16; ++j) {
      const float kv = Ks[(x + u) * RS + tx + 16 * j];
      SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) dq[i][j] = fmaf(comp(s4[i], u), kv, dq[i][j]);
    }
  }
}


// dK tile (64 keys x d) and, when WITH_DQ, the dQ contributions of one key
// tile (atomics). grid = (B * n_kt, q_split). gq must be zeroed (WITH_DQ); gk
// too when q_split > 1.
template <int DP, bool WITH_DQ>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DP>)
    bwd_dkdq_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                    const float* __restrict__ lse, const float* __restrict__ D, const float* __restrict__ gout,
                    float* __restrict__ gq, float* __restrict__ gk, int N, int S, int d, int dv, int n_kt) {
  constexpr int RS = DP + 4;
  constexpr int PS = kBK + 4;
  constexpr int DJ = DP / 16;  // d columns per thread: tx + 16 j
  SAGAN_DYNAMIC_SMEM(float, smem);
  const BwdTiles t = bwd_tiles<DP>(smem);
  float *Ks = t.Ks, *Qs = t.Qs, *dSs = t.dSs;

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int64_t b = blockIdx.x / n_kt;
  const int k0 = static_cast<int>(blockIdx.x % n_kt) * kBK;
  const int n_qt = ceil_div(N, kBQ);
  const float* qb = q + b * N * d;
  const float* vb = v + b * S * dv;
  const float* gb = gout + b * N * dv;
  load_rows<DP>(Ks, k + b * S * d, k0, S, d, kBK);

  float dk[4][DJ];
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) SAGAN_UNROLL
  for (int j = 0; j < DJ; ++j) dk[i][j] = 0.f;

  for (int qt = static_cast<int>(blockIdx.y); qt < n_qt; qt += static_cast<int>(gridDim.y)) {
    const int q0 = qt * kBQ;
    __syncthreads();
    load_rows<DP>(Qs, qb, q0, N, d, kBQ);
    load_row_stats(t, lse, D, b, N, q0);
    __syncthreads();

    bwd_ds_tile<DP>(t, gb, vb, q0, k0, N, S, dv);
    __syncthreads();

    // dK[key][e] += sum_r dS[r][key] Q[r][e]; keys ty*4 + i, e = tx + 16 j.
    for (int r = 0; r < kBQ; ++r) {
      const float4 s4 = ld4(dSs + r * PS + ty * 4);
      SAGAN_UNROLL
      for (int j = 0; j < DJ; ++j) {
        const float qv = Qs[r * RS + tx + 16 * j];
        SAGAN_UNROLL
        for (int i = 0; i < 4; ++i) dk[i][j] = fmaf(comp(s4, i), qv, dk[i][j]);
      }
    }

    if constexpr (WITH_DQ) {
      // dQ[r][e] = sum_key dS[r][key] K[key][e]; rows ty*4 + i, e = tx + 16 j.
      float dq[4][DJ];
      SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) SAGAN_UNROLL
      for (int j = 0; j < DJ; ++j) dq[i][j] = 0.f;
      bwd_accumulate_dq<DP>(dq, dSs, Ks);
      SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int row = q0 + ty * 4 + i;
        if (row >= N) continue;
        SAGAN_UNROLL
        for (int j = 0; j < DJ; ++j)
          if (tx + 16 * j < d) atomicAdd(gq + (b * N + row) * d + tx + 16 * j, dq[i][j]);
      }
    }
  }

  const bool accumulate = gridDim.y > 1;
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) {
    const int key = k0 + ty * 4 + i;
    if (key >= S) continue;
    SAGAN_UNROLL
    for (int j = 0; j < DJ; ++j) {
      const int e = tx + 16 * j;
      if (e >= d) continue;
      float* dst = gk + (b * S + key) * d + e;
      if (accumulate)
        atomicAdd(dst, dk[i][j]);
      else
        *dst = dk[i][j];
    }
  }
}

// dQ tile (64 queries x d) = sum over the key tiles, in order, of dS K, with
// P and dP recomputed per key tile as bwd_dkdq_kernel computes them; each
// thread keeps its dQ entries in registers and stores them once: no atomics,
// a fixed summation order. grid = (B * n_qt); bwd_dkdq_smem_floats<DP>().
template <int DP>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DP>)
    bwd_dq_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                  const float* __restrict__ lse, const float* __restrict__ D, const float* __restrict__ gout,
                  float* __restrict__ gq, int N, int S, int d, int dv, int n_qt) {
  constexpr int DJ = DP / 16;
  SAGAN_DYNAMIC_SMEM(float, smem);
  const BwdTiles t = bwd_tiles<DP>(smem);

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int64_t b = blockIdx.x / n_qt;
  const int q0 = static_cast<int>(blockIdx.x % n_qt) * kBQ;
  const int n_kt = ceil_div(S, kBK);
  const float* kb = k + b * S * d;
  const float* vb = v + b * S * dv;
  const float* gb = gout + b * N * dv;
  load_rows<DP>(t.Qs, q + b * N * d, q0, N, d, kBQ);
  load_row_stats(t, lse, D, b, N, q0);

  float dq[4][DJ];
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) SAGAN_UNROLL
  for (int j = 0; j < DJ; ++j) dq[i][j] = 0.f;

  for (int kt = 0; kt < n_kt; ++kt) {
    const int k0 = kt * kBK;
    __syncthreads();  // the previous key tile's Ks and dSs have been read
    load_rows<DP>(t.Ks, kb, k0, S, d, kBK);
    __syncthreads();
    bwd_ds_tile<DP>(t, gb, vb, q0, k0, N, S, dv);
    __syncthreads();
    bwd_accumulate_dq<DP>(dq, t.dSs, t.Ks);
  }
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) {
    const int row = q0 + ty * 4 + i;
    if (row >= N) continue;
    SAGAN_UNROLL
    for (int j = 0; j < DJ; ++j)
      if (tx + 16 * j < d) gq[(b * N + row) * d + tx + 16 * j] = dq[i][j];
  }
}

// ---------------------------------------------------------------------------
// Host dispatch, shared by the CUDA entry points and the emulated tests.
// ---------------------------------------------------------------------------
enum class FwdVariant { Tiled = 0, RowWarp = 1, TiledAsync = 2 };

struct Shape {
  int B, N, S, d, dv;
};

inline bool shape_ok(const Shape& s) {
  return s.B >= 0 && s.N >= 0 && s.S >= 1 && s.d >= 1 && s.d <= kMaxD && s.dv >= 1;
}

// Splits of the query loop in the backward kernels: enough blocks for about
// two per multiprocessor, never more splits than query tiles.
inline int query_splits(int64_t blocks, int n_qt, int num_sms) {
  const int64_t want = 2 * static_cast<int64_t>(num_sms);
  if (blocks >= want || blocks == 0) return 1;
  return static_cast<int>(std::min<int64_t>(n_qt, ceil_div64(want, blocks)));
}

// f(std::integral_constant<int, DP>{}) for the padded head sizes the kernels
// are instantiated for: 16-128, and 8 for the kernels that pad narrowly
// (NARROW, padded_d_narrow); false for any other value.
template <bool NARROW, class F>
bool with_padded_d(int dp, F&& f) {
  switch (dp) {
    case 8:
      if constexpr (NARROW) {
        f(std::integral_constant<int, 8>{});
        return true;
      } else {
        return false;
      }
    case 16:
      f(std::integral_constant<int, 16>{});
      return true;
    case 32:
      f(std::integral_constant<int, 32>{});
      return true;
    case 64:
      f(std::integral_constant<int, 64>{});
      return true;
    case 128:
      f(std::integral_constant<int, 128>{});
      return true;
    default:
      return false;
  }
}

// f(DP, CPT) as integral constants: a narrowly padded head size and 4 or 8
// value columns per thread.
template <class F>
bool with_padded_d_cpt(int dp, int cpt, F&& f) {
  if (cpt != 4 && cpt != 8) return false;
  return with_padded_d<true>(dp, [&](auto d_c) {
    if (cpt == 4)
      f(d_c, std::integral_constant<int, 4>{});
    else
      f(d_c, std::integral_constant<int, 8>{});
  });
}

template <class L>
Status forward(L& launcher, const float* q, const float* k, const float* v, float* out, float* lse, const Shape& s,
               FwdVariant variant) {
  if (!shape_ok(s)) return Status::Invalid;
  if (s.B == 0 || s.N == 0) return Status::Ok;
  const int64_t rows = static_cast<int64_t>(s.B) * s.N;
  if (variant == FwdVariant::RowWarp) {
    const int64_t blocks = ceil_div64(rows, kRowWarps);
    if (s.dv > 512 || blocks > 0x7fffffff) return Status::Invalid;
    const dim3 grid(static_cast<unsigned>(blocks)), block(kRowWarps * 32);
    const int cpl = ceil_div(s.dv, 32);
    if (cpl <= 1)
      launcher.launch(fwd_rowwarp_kernel<1>, grid, block, 0, q, k, v, out, lse, rows, s.N, s.S, s.d, s.dv);
    else if (cpl <= 2)
      launcher.launch(fwd_rowwarp_kernel<2>, grid, block, 0, q, k, v, out, lse, rows, s.N, s.S, s.d, s.dv);
    else if (cpl <= 4)
      launcher.launch(fwd_rowwarp_kernel<4>, grid, block, 0, q, k, v, out, lse, rows, s.N, s.S, s.d, s.dv);
    else if (cpl <= 8)
      launcher.launch(fwd_rowwarp_kernel<8>, grid, block, 0, q, k, v, out, lse, rows, s.N, s.S, s.d, s.dv);
    else
      launcher.launch(fwd_rowwarp_kernel<16>, grid, block, 0, q, k, v, out, lse, rows, s.N, s.S, s.d, s.dv);
    return Status::Ok;
  }
  const int n_qt = ceil_div(s.N, kBQ);
  const int64_t gx = static_cast<int64_t>(s.B) * n_qt;
  const int cpt = cols_per_thread(s.dv);
  const int64_t gy = ceil_div64(s.dv, 16 * cpt);
  if (gx > 0x7fffffff || gy > 65535) return Status::Invalid;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), block(kThreads);
  auto go = [&](auto kernel, size_t floats) {
    launcher.launch(kernel, grid, block, floats * sizeof(float), q, k, v, out, lse, s.N, s.S, s.d, s.dv, n_qt);
  };
  auto pick = [&](auto async_tag) {
    constexpr bool A = decltype(async_tag)::value;
    const bool ok = with_padded_d_cpt(padded_d_narrow(s.d), cpt, [&](auto d_c, auto c_c) {
      constexpr int DP = decltype(d_c)::value, CPT = decltype(c_c)::value;
      go(fwd_tiled_kernel<DP, CPT, A>, fwd_smem_floats<DP, CPT, A>());
    });
    return ok ? Status::Ok : Status::Invalid;
  };
  return variant == FwdVariant::TiledAsync ? pick(std::true_type{}) : pick(std::false_type{});
}

// Scratch of the backward: D, one float per query row, 256-byte aligned size.
inline size_t backward_workspace_bytes(const Shape& s) {
  const size_t n = static_cast<size_t>(std::max(s.B, 0)) * static_cast<size_t>(std::max(s.N, 0));
  return (n * sizeof(float) + 255) / 256 * 256;
}

template <class L>
Status backward(L& launcher, const float* q, const float* k, const float* v, const float* out, const float* lse,
                const float* gout, float* gq, float* gk, float* gv, const Shape& s, void* workspace,
                size_t workspace_bytes, bool deterministic) {
  if (!shape_ok(s)) return Status::Invalid;
  if (s.B == 0) return Status::Ok;
  const size_t nq = static_cast<size_t>(s.B) * s.N;
  if (s.N == 0) {  // no queries: no gradient reaches k or v
    launcher.zero(gk, static_cast<size_t>(s.B) * s.S * s.d);
    launcher.zero(gv, static_cast<size_t>(s.B) * s.S * s.dv);
    return Status::Ok;
  }
  if (workspace == nullptr || workspace_bytes < backward_workspace_bytes(s)) return Status::Invalid;
  float* D = static_cast<float*>(workspace);
  const int n_qt = ceil_div(s.N, kBQ), n_kt = ceil_div(s.S, kBK);
  const int64_t gx = static_cast<int64_t>(s.B) * n_kt;
  const int cpt = cols_per_thread(s.dv);
  const int64_t n_dvt = ceil_div64(s.dv, 16 * cpt);
  const int64_t dot_blocks = ceil_div64(static_cast<int64_t>(nq), kDotWarps);
  const int64_t gq_blocks = static_cast<int64_t>(s.B) * n_qt;
  if (gx > 0x7fffffff || gq_blocks > 0x7fffffff || dot_blocks > 0x7fffffff || n_dvt > 65535) return Status::Invalid;

  launcher.launch(bwd_dot_kernel, dim3(static_cast<unsigned>(dot_blocks)), dim3(kDotWarps * 32), 0, gout, out, D,
                  static_cast<int64_t>(nq), s.dv);

  // dV
  const int split_v = deterministic ? 1 : query_splits(gx * n_dvt, n_qt, launcher.num_sms());
  if (split_v > 1) launcher.zero(gv, static_cast<size_t>(s.B) * s.S * s.dv);
  const dim3 grid_v(static_cast<unsigned>(gx), static_cast<unsigned>(n_dvt), static_cast<unsigned>(split_v));
  auto go_v = [&](auto kernel, size_t floats) {
    launcher.launch(kernel, grid_v, dim3(kThreads), floats * sizeof(float), q, k, lse, gout, gv, s.N, s.S, s.d, s.dv,
                    n_kt);
  };
  const bool dv_ok = with_padded_d_cpt(padded_d_narrow(s.d), cpt, [&](auto d_c, auto c_c) {
    constexpr int DP = decltype(d_c)::value, CPT = decltype(c_c)::value;
    go_v(bwd_dv_kernel<DP, CPT>, bwd_dv_smem_floats<DP, CPT>());
  });
  if (!dv_ok) return Status::Invalid;

  // dK and dQ: dQ by atomics in the dK kernel, or (deterministic) by the dq
  // kernel over query tiles.
  const int split_k = deterministic ? 1 : query_splits(gx, n_qt, launcher.num_sms());
  if (!deterministic) launcher.zero(gq, nq * static_cast<size_t>(s.d));
  if (split_k > 1) launcher.zero(gk, static_cast<size_t>(s.B) * s.S * s.d);
  const dim3 grid_k(static_cast<unsigned>(gx), static_cast<unsigned>(split_k));
  auto go_k = [&](auto dp_tag) {
    constexpr int DP = decltype(dp_tag)::value;
    const size_t bytes = bwd_dkdq_smem_floats<DP>() * sizeof(float);
    if (deterministic) {
      launcher.launch(bwd_dkdq_kernel<DP, false>, grid_k, dim3(kThreads), bytes, q, k, v, lse,
                      static_cast<const float*>(D), gout, gq, gk, s.N, s.S, s.d, s.dv, n_kt);
      launcher.launch(bwd_dq_kernel<DP>, dim3(static_cast<unsigned>(gq_blocks)), dim3(kThreads), bytes, q, k, v, lse,
                      static_cast<const float*>(D), gout, gq, s.N, s.S, s.d, s.dv, n_qt);
    } else {
      launcher.launch(bwd_dkdq_kernel<DP, true>, grid_k, dim3(kThreads), bytes, q, k, v, lse,
                      static_cast<const float*>(D), gout, gq, gk, s.N, s.S, s.d, s.dv, n_kt);
    }
  };
  if (!with_padded_d<false>(padded_d(s.d), go_k)) return Status::Invalid;
  return Status::Ok;
}

}  // namespace
}  // namespace sagan::fused::fa
