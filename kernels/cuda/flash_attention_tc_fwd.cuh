// Tensor-core attention forward: O = softmax(Q K^T) V per batch, no
// 1/sqrt(d) scaling, lse = natural log-sum-exp of each score row (the
// convention of every other attention path, so any forward pairs with any
// backward). q (B,N,d), k (B,S,d), v (B,S,dv), out (B,N,dv), lse (B,N),
// contiguous float32; products on tensor cores in TcPrec P, softmax
// statistics and accumulation in float32.
//
// A block (4 warps) owns 64 queries x DVT output columns of one batch
// element and streams the keys in tiles of 64, double-buffered in shared
// memory by cp.async (tile t+1 loads while tile t is computed). Warp w owns
// queries 16w..16w+15: S = Q K^T for its 16 x 64 scores (8 accumulator
// tiles), the online softmax on those registers (rows shared by the 4 lanes
// of a quad), then O += P V with P taken straight from the score
// registers as the A operand. grid = (B * ceil(N/64), ceil(dv/DVT)).
//
// Included by flash_attention_tc_fwd.cu (nvcc) and the emulator tests; the
// dispatch at the end takes a Launcher (see flash_attention_common.cuh).
#pragma once
#include "sagan/kernels/cuda/flash_attention_tc_common.cuh"

namespace sagan::fused::tc {
namespace {

template <int DP, int DVT>
constexpr size_t fwd_smem_floats() {
  return size_t(kBQ) * (DP + 4) + 2 * (size_t(kBK) * (DP + 4) + size_t(kBK) * (DVT + 4));
}

// vec: bit 0 q, bit 1 k, bit 2 v rows are 16-byte aligned (16-byte copies).
template <TcPrec P, int DP, int DVT>
__global__ void __launch_bounds__(kThreads)
    fwd_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
               float* __restrict__ out, float* __restrict__ lse, int N, int S, int d, int dv, int n_qt, int vec) {
  constexpr int RS = DP + 4;   // row stride of Q and K tiles: RS/4 odd, ldmatrix conflict-free
  constexpr int VS = DVT + 4;  // V tile: rows 2t, 2t+1 of 32 lanes hit distinct banks
  constexpr bool HI = DP >= 16;
  constexpr int KSTEPS = (DP + 15) / 16;
  constexpr int NT = DVT / 8;  // 16x8 output tiles per warp
  SAGAN_DYNAMIC_SMEM(float, smem);
  float* Qs = smem;               // [kBQ][RS]
  float* Kb = Qs + kBQ * RS;      // [2][kBK][RS]
  float* Vb = Kb + 2 * kBK * RS;  // [2][kBK][VS]

  const int warp = static_cast<int>(threadIdx.x) / 32, g = lane_g(), t = lane_t();
  const int64_t b = blockIdx.x / n_qt;
  const int q0 = static_cast<int>(blockIdx.x % n_qt) * kBQ;
  const int c0 = static_cast<int>(blockIdx.y) * DVT;
  const float* qb = q + b * N * d;
  const float* kb = k + b * S * d;
  const float* vb = v + b * S * dv;
  const bool vq = vec & 1, vk = vec & 2, vv = vec & 4;
  const int n_kt = ceil_div(S, kBK);

  load_tile_async<kBQ, DP, RS>(Qs, qb, d, q0, N, 0, d, vq);
  load_tile_async<kBK, DP, RS>(Kb, kb, d, 0, S, 0, d, vk);
  load_tile_async<kBK, DVT, VS>(Vb, vb, dv, 0, S, c0, dv, vv);
  cp_async_commit();

  // Rows g and g + 8 of the warp's 16: running max (base 2), sum, output.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[NT][4];
  SAGAN_UNROLL
  for (int n = 0; n < NT; ++n) SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) o[n][i] = 0.f;

  for (int kt = 0; kt < n_kt; ++kt) {
    const float* Ks = Kb + (kt & 1) * kBK * RS;
    const float* Vs = Vb + (kt & 1) * kBK * VS;
    // Every warp is done with tile kt-1, whose buffers the prefetch reuses.
    __syncthreads();
    if (kt + 1 < n_kt) {
      load_tile_async<kBK, DP, RS>(Kb + ((kt + 1) & 1) * kBK * RS, kb, d, (kt + 1) * kBK, S, 0, d, vk);
      load_tile_async<kBK, DVT, VS>(Vb + ((kt + 1) & 1) * kBK * VS, vb, dv, (kt + 1) * kBK, S, c0, dv, vv);
      cp_async_commit();
      cp_async_wait<1>();  // this thread's copies of tile kt (and Q) have landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // ... and every thread's

    // S = Q K^T: 16 queries x 64 keys per warp.
    float s[8][4];
    SAGAN_UNROLL
    for (int j = 0; j < 8; ++j) SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) s[j][i] = 0.f;
    SAGAN_UNROLL
    for (int kk = 0; kk < KSTEPS; ++kk) {
      const OpA<P> a = prep_a<P>(load_a<RS, HI>(Qs, 16 * warp, 16 * kk));
      SAGAN_UNROLL
      for (int jp = 0; jp < 4; ++jp) {
        RawB rb[2];
        load_b2<RS, HI>(rb, Ks, 16 * jp, 16 * kk);
        mma_k16<P, HI>(s[2 * jp], a, prep_b<P>(rb[0]));
        mma_k16<P, HI>(s[2 * jp + 1], a, prep_b<P>(rb[1]));
      }
    }

    // Online softmax in base 2. Tile kt holds at least one real key, so the
    // new maxima are finite, and 2^(-inf - max) = 0 covers the first tile and
    // masked keys alike.
    float mx[2] = {m[0], m[1]};
    SAGAN_UNROLL
    for (int j = 0; j < 8; ++j) SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) {
      const int key = kt * kBK + 8 * j + 2 * t + (i & 1);
      s[j][i] = key < S ? s[j][i] * kLog2e : -INFINITY;
      mx[i / 2] = fmaxf(mx[i / 2], s[j][i]);
    }
    float alpha[2], rsum[2] = {0.f, 0.f};
    SAGAN_UNROLL
    for (int r = 0; r < 2; ++r) {
      mx[r] = quad_max(mx[r]);
      alpha[r] = exp2f(m[r] - mx[r]);
      m[r] = mx[r];
    }
    SAGAN_UNROLL
    for (int j = 0; j < 8; ++j) SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) {
      s[j][i] = exp2f(s[j][i] - mx[i / 2]);
      rsum[i / 2] += s[j][i];
    }
    SAGAN_UNROLL
    for (int r = 0; r < 2; ++r) l[r] = l[r] * alpha[r] + quad_sum(rsum[r]);
    SAGAN_UNROLL
    for (int n = 0; n < NT; ++n) SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) o[n][i] *= alpha[i / 2];

    // O += P V: P from the score registers, 16 keys per k step.
    SAGAN_UNROLL
    for (int jk = 0; jk < 4; ++jk) {
      const OpA<P> pa = prep_a<P>(a_from_acc(s[2 * jk], s[2 * jk + 1]));
      SAGAN_UNROLL
      for (int n = 0; n < NT; ++n) mma_k16<P, true>(o[n], pa, prep_b<P>(load_b_kn_paired<VS>(Vs, 16 * jk, 8 * n)));
    }
  }

  SAGAN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int row = q0 + 16 * warp + g + 8 * r;
    if (row >= N) continue;
    const float inv = 1.f / l[r];
    float* orow = out + (b * N + row) * dv;
    SAGAN_UNROLL
    for (int n = 0; n < NT; ++n) {
      const int col = c0 + 8 * n + 2 * t;
      if (col < dv) orow[col] = o[n][2 * r] * inv;
      if (col + 1 < dv) orow[col + 1] = o[n][2 * r + 1] * inv;
    }
    if (blockIdx.y == 0 && t == 0) lse[b * N + row] = (m[r] + log2f(l[r])) * kLn2;
  }
}

template <class L>
Status forward(L& launcher, const float* q, const float* k, const float* v, float* out, float* lse, const Shape& s,
               TcPrec prec) {
  if (!shape_ok(s)) return Status::Invalid;
  if (s.B == 0 || s.N == 0) return Status::Ok;
  const int n_qt = ceil_div(s.N, kBQ);
  const int64_t gx = static_cast<int64_t>(s.B) * n_qt;
  const int64_t gy = ceil_div64(s.dv, dv_tile(s.dv));
  if (gx > 0x7fffffff || gy > 65535) return Status::Invalid;
  const int vec =
      (rows_aligned16(q, s.d) ? 1 : 0) | (rows_aligned16(k, s.d) ? 2 : 0) | (rows_aligned16(v, s.dv) ? 4 : 0);
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), block(kThreads);
  bool ok = false;
  with_prec(prec, [&](auto pc) {
    ok = with_padded_d(s.d, [&](auto dp) {
      with_dv_tile(s.dv, [&](auto dvt) {
        constexpr TcPrec P = decltype(pc)::value;
        constexpr int DP = decltype(dp)::value, DVT = decltype(dvt)::value;
        launcher.launch(fwd_kernel<P, DP, DVT>, grid, block, fwd_smem_floats<DP, DVT>() * sizeof(float), q, k, v, out,
                        lse, s.N, s.S, s.d, s.dv, n_qt, vec);
      });
    });
  });
  return ok ? Status::Ok : Status::Invalid;
}

}  // namespace
}  // namespace sagan::fused::tc
