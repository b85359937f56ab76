// The fused attention backward kernels (D, dV, dK/dQ, and the deterministic
// dQ) and their dispatch (flash_attention_common.cuh has the shared pieces;
// docs/kernels.md the design).
#pragma once
#include "sagan/kernels/cuda/flash_attention_common.cuh"

namespace sagan::fused::fa {
namespace {  // internal linkage: see flash_attention_common.cuh

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
// Host dispatch of the backward.
// ---------------------------------------------------------------------------
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

  launcher.launch(rows_dot_kernel<kDotWarps>, dim3(static_cast<unsigned>(dot_blocks)), dim3(kDotWarps * 32), 0, gout, out, D,
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
