// The fused attention forward kernels (three versions) and their dispatch
// (flash_attention_common.cuh has the shared pieces; docs/kernels.md the
// design).
#pragma once
#include "sagan/kernels/cuda/flash_attention_common.cuh"

namespace sagan::fused::fa {
namespace {  // internal linkage: see flash_attention_common.cuh

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
// Host dispatch of the forward.
// ---------------------------------------------------------------------------
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

}  // namespace
}  // namespace sagan::fused::fa
