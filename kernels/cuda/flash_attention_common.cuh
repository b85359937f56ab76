// Fused attention kernels, float32: O = softmax(Q K^T) V per batch, no
// 1/sqrt(d) scaling, and its backward. q (B,N,d), k (B,S,d), v (B,S,dv),
// out (B,N,dv), lse (B,N), all contiguous. The N x S score matrix never goes
// to global memory. Design notes: docs/kernels.md.
//
// This header: tile sizes, the tile loaders and products both directions
// use, and the host dispatch's shapes and size switches. The kernels are in
// flash_attention_fwd_kernels.cuh and flash_attention_bwd_kernels.cuh,
// included by flash_attention_fwd.cu / flash_attention_bwd.cu (nvcc) and by
// the emulated CPU tests (tests/test_flash_attention_emu.cpp). Their
// dispatch functions take a Launcher so that both share grid and shared-
// memory sizing: launcher.launch(kernel, grid, block, smem_bytes, args...),
// launcher.zero(float* p, size_t n), launcher.num_sms().
#pragma once
#include <algorithm>
#include <type_traits>

#include "sagan/kernels/cuda/fused_common.cuh"

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

}  // namespace
}  // namespace sagan::fused::fa
