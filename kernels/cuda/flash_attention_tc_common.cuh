// Shared pieces of the tensor-core attention kernels
// (flash_attention_tc_fwd.cuh, flash_attention_tc_bwd.cuh): tile sizes, the
// asynchronous tile loader, and the compile-time dispatch over head sizes
// and precisions. Design notes: docs/kernels.md ("Tensor-core attention").
#pragma once
#include <algorithm>
#include <type_traits>

#include "sagan/kernels/cuda/tc_fragments.cuh"

namespace sagan::fused::tc {
// Internal linkage: compiled by nvcc and, as host code, by the emulator
// tests in the same program (see flash_attention_common.cuh).
namespace {

// A block is 4 warps; a warp owns 16 rows of a 64-row tile (queries in the
// forward, keys in the backward) and all 64 columns of the other side.
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kBQ = 64;  // queries per tile
constexpr int kBK = 64;  // keys per tile
constexpr int kMaxD = 128;

struct Shape {
  int B, N, S, d, dv;
};

inline bool shape_ok(const Shape& s) {
  return s.B >= 0 && s.N >= 0 && s.S >= 1 && s.d >= 1 && s.d <= kMaxD && s.dv >= 1;
}

// Head sizes round up to a compiled width: d to 8, 16, 32, 64 or 128 (zero
// columns add nothing), dv to column tiles of 32, 64 or 128.
inline int padded_d(int d) { return d <= 8 ? 8 : d <= 16 ? 16 : d <= 32 ? 32 : d <= 64 ? 64 : d <= kMaxD ? 128 : 0; }
inline int dv_tile(int dv) { return dv <= 32 ? 32 : dv <= 64 ? 64 : 128; }

template <int V>
using IntC = std::integral_constant<int, V>;

template <class F>
bool with_padded_d(int d, F&& f) {
  switch (padded_d(d)) {
    case 8:
      f(IntC<8>{});
      return true;
    case 16:
      f(IntC<16>{});
      return true;
    case 32:
      f(IntC<32>{});
      return true;
    case 64:
      f(IntC<64>{});
      return true;
    case 128:
      f(IntC<128>{});
      return true;
    default:
      return false;
  }
}

template <class F>
void with_dv_tile(int dv, F&& f) {
  switch (dv_tile(dv)) {
    case 32:
      f(IntC<32>{});
      break;
    case 64:
      f(IntC<64>{});
      break;
    default:
      f(IntC<128>{});
      break;
  }
}

template <TcPrec P>
using PrecC = std::integral_constant<TcPrec, P>;

template <class F>
bool with_prec(TcPrec p, F&& f) {
  switch (p) {
    case TcPrec::F32:
      f(PrecC<TcPrec::F32>{});
      return true;
    case TcPrec::TF32:
      f(PrecC<TcPrec::TF32>{});
      return true;
    case TcPrec::BF16:
      f(PrecC<TcPrec::BF16>{});
      return true;
  }
  return false;
}

// Whether a row-major matrix can be copied in 16-byte pieces: rows start
// 16-byte aligned.
inline bool rows_aligned16(const float* p, int64_t ld) {
  return ld % 4 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// tile[r][c] (row stride RS) = src[(r0 + r) * ld + c0 + c] for r < ROWS,
// c < W, zero where r0 + r >= nrows or c0 + c >= ncols, issued as cp.async
// (the caller commits and waits). vec: 16-byte copies (rows 16-byte aligned
// and c0 % 4 == 0), partial ones zero-filled past ncols; else 4-byte copies.
// W is a power of two, so the index split is shifts.
template <int ROWS, int W, int RS>
__device__ __forceinline__ void load_tile_async(float* tile, const float* src, int64_t ld, int r0, int nrows, int c0,
                                                int ncols, bool vec) {
  const int tid = static_cast<int>(threadIdx.x);
  if (vec) {
    constexpr int C4 = W / 4;
    for (int idx = tid; idx < ROWS * C4; idx += kThreads) {
      const int r = idx / C4, c = (idx % C4) * 4;
      const int row = r0 + r, col = c0 + c;
      const int left = ncols - col;
      const int n = row >= nrows || left <= 0 ? 0 : left < 4 ? left : 4;
      cp_async16(tile + r * RS + c, n > 0 ? src + static_cast<int64_t>(row) * ld + col : src, 4 * n);
    }
  } else {
    for (int idx = tid; idx < ROWS * W; idx += kThreads) {
      const int r = idx / W, c = idx % W;
      const int row = r0 + r, col = c0 + c;
      const bool ok = row < nrows && col < ncols;
      cp_async4(tile + r * RS + c, ok ? src + static_cast<int64_t>(row) * ld + col : src, ok);
    }
  }
}

// Row max and sum over the 4 lanes (a quad) that share accumulator rows.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

}  // namespace
}  // namespace sagan::fused::tc
