// Tensor-core attention backward, deterministic: no float atomics; every sum
// runs in a fixed order, so two runs give bitwise equal gradients.
// With P = exp(S - lse) recomputed from the forward's lse:
//   D_i = sum_c dO_ic O_ic,  dV = P^T dO,  dP = dO V^T,  dS = P * (dP - D),
//   dQ = dS K,  dK = dS^T Q.
// Kernels (grids are over batch x 64-key tiles, warps own 16 keys each):
//   1. dot:   D, one warp per query row (float32, fixed order).
//   2. dv:    dV for a key tile and a DVT column tile, looping over query
//             tiles: S^T = K Q^T -> P^T in registers -> dV += P^T dO.
//   3. dkdq:  for each of its key tiles, looping over query tiles:
//             S^T -> P^T, dP^T = V dO^T (dv in chunks of 32), dS^T in
//             registers, dK += dS^T Q; dS goes through shared memory so that
//             each warp then owns 16 queries for dQ_part = dS K.
//   4. sum:   partial results added in a fixed order.
// dQ sums over all keys, which are spread over blocks. Instead of atomics,
// the key tiles of a batch element are dealt to n_kb blocks (block kb takes
// tiles kb, kb + n_kb, ...); each block adds its tiles' dQ into its own
// partial buffer (thread-private read-modify-write, in tile order) and
// kernel 4 adds the n_kb partials in order (n_kb = 1: straight into dQ).
// When B * n_kb blocks still cannot fill the GPU, the query loop of kernels
// 2 and 3 is split over q_split blocks as well (query tiles z, z + q_split,
// ...), and dK and dV get q_split partials, summed in order the same way.
// Partial buffers live in the caller's workspace; batches run in chunks so
// that the workspace stays under kWorkspaceBudget.
#pragma once
#include "sagan/kernels/cuda/flash_attention_tc_common.cuh"

namespace sagan::fused::tc {
namespace {

constexpr int kDvChunk = 32;  // dv columns per step of dP^T = V dO^T
constexpr size_t kWorkspaceBudget = size_t(256) << 20;

// out[i] = sum_p parts[p * n + i] for p = 0, 1, ..., nparts - 1, in order.
__global__ void __launch_bounds__(256)
    sum_parts_kernel(float* __restrict__ out, const float* __restrict__ parts, int nparts, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float acc = parts[i];
    for (int p = 1; p < nparts; ++p) acc += parts[p * n + i];
    out[i] = acc;
  }
}

// 2^(log2e s - lse2) for the scores of a warp's 16 keys x 64 queries (C
// layout, rows keys), zero for keys >= S; lse2 = lse log2e, +inf for
// queries >= N.
__device__ __forceinline__ void scores_to_probs(float (&st)[8][4], const float* L2s, int key0, int S) {
  const int g = lane_g(), t = lane_t();
  SAGAN_UNROLL
  for (int j = 0; j < 8; ++j) SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) {
    const bool key_ok = key0 + g + 8 * (i / 2) < S;
    st[j][i] = key_ok ? exp2f(fmaf(st[j][i], kLog2e, -L2s[8 * j + 2 * t + (i & 1)])) : 0.f;
  }
}

// S^T = K Q^T for the warp's 16 keys (rows 16 w.. of Ks) x 64 queries.
template <TcPrec P, int DP>
__device__ __forceinline__ void scores_t(float (&st)[8][4], const float* Ks, const float* Qs) {
  constexpr int RS = DP + 4;
  constexpr bool HI = DP >= 16;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  SAGAN_UNROLL
  for (int j = 0; j < 8; ++j) SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) st[j][i] = 0.f;
  SAGAN_UNROLL
  for (int kk = 0; kk < (DP + 15) / 16; ++kk) {
    const OpA<P> a = prep_a<P>(load_a<RS, HI>(Ks, 16 * warp, 16 * kk));
    SAGAN_UNROLL
    for (int jp = 0; jp < 4; ++jp) {
      RawB rb[2];
      load_b2<RS, HI>(rb, Qs, 16 * jp, 16 * kk);
      mma_k16<P, HI>(st[2 * jp], a, prep_b<P>(rb[0]));
      mma_k16<P, HI>(st[2 * jp + 1], a, prep_b<P>(rb[1]));
    }
  }
}

// acc (16 rows x 8 NT columns) += X M, X = the warp's 16 x 64 accumulator
// tiles taken as the A operand (k = the 64 columns), M a [64][MS] tile in
// shared memory (rows k).
template <TcPrec P, int NT, int MS>
__device__ __forceinline__ void acc_times_tile(float (&acc)[NT][4], const float (&x)[8][4], const float* M) {
  SAGAN_UNROLL
  for (int jk = 0; jk < 4; ++jk) {
    const OpA<P> a = prep_a<P>(a_from_acc(x[2 * jk], x[2 * jk + 1]));
    SAGAN_UNROLL
    for (int n = 0; n < NT; ++n) mma_k16<P, true>(acc[n], a, prep_b<P>(load_b_kn_paired<MS>(M, 16 * jk, 8 * n)));
  }
}

// Stores (or, with `add`, adds to) a warp's 16 x 8 NT accumulator tiles at
// rows row0 + (g, g + 8) < nrows and columns 8 n + 2t (+1) < ncols of a
// row-major matrix with ld columns.
template <int NT>
__device__ __forceinline__ void store_tiles(float* dst, int64_t ld, int row0, int nrows, int ncols,
                                            const float (&acc)[NT][4], bool add) {
  const int g = lane_g(), t = lane_t();
  SAGAN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + g + 8 * r;
    if (row >= nrows) continue;
    float* p = dst + row * ld;
    SAGAN_UNROLL
    for (int n = 0; n < NT; ++n) SAGAN_UNROLL
    for (int u = 0; u < 2; ++u) {
      const int col = 8 * n + 2 * t + u;
      if (col >= ncols) continue;
      p[col] = add ? p[col] + acc[n][2 * r + u] : acc[n][2 * r + u];
    }
  }
}

template <int DP, int DVT>
constexpr size_t dv_smem_floats() {
  return 2 * size_t(kBK) * (DP + 4) + size_t(kBQ) * (DVT + 4) + kBQ;
}

// dV (or its query-split partial) for one 64-key tile and DVT columns.
// grid = (B * n_kt, ceil(dv / DVT), q_split). gv_part: dV when q_split == 1,
// else q_split partial buffers of B * S * dv.
template <TcPrec P, int DP, int DVT>
__global__ void __launch_bounds__(kThreads)
    dv_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ lse,
              const float* __restrict__ gout, float* __restrict__ gv_part, int B, int N, int S, int d, int dv, int n_kt,
              int vec) {
  constexpr int RS = DP + 4, GS = DVT + 4;
  constexpr int NT = DVT / 8;
  SAGAN_DYNAMIC_SMEM(float, smem);
  float* Ks = smem;            // [kBK][RS]
  float* Qs = Ks + kBK * RS;   // [kBQ][RS]
  float* Gs = Qs + kBQ * RS;   // [kBQ][GS] dO columns c0..c0+DVT
  float* L2s = Gs + kBQ * GS;  // [kBQ]

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int64_t b = blockIdx.x / n_kt;
  const int k0 = static_cast<int>(blockIdx.x % n_kt) * kBK;
  const int c0 = static_cast<int>(blockIdx.y) * DVT;
  const int n_qt = ceil_div(N, kBQ);
  const float* qb = q + b * N * d;
  const float* gb = gout + b * N * dv;
  const bool vq = vec & 1, vk = vec & 2, vg = vec & 8;
  load_tile_async<kBK, DP, RS>(Ks, k + b * S * d, d, k0, S, 0, d, vk);

  float acc[NT][4];
  SAGAN_UNROLL
  for (int n = 0; n < NT; ++n) SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) acc[n][i] = 0.f;

  for (int qt = static_cast<int>(blockIdx.z); qt < n_qt; qt += static_cast<int>(gridDim.z)) {
    const int q0 = qt * kBQ;
    __syncthreads();  // the previous tile's Qs, Gs, L2s are no longer read
    load_tile_async<kBQ, DP, RS>(Qs, qb, d, q0, N, 0, d, vq);
    load_tile_async<kBQ, DVT, GS>(Gs, gb, dv, q0, N, c0, dv, vg);
    cp_async_commit();
    for (int r = static_cast<int>(threadIdx.x); r < kBQ; r += kThreads)
      L2s[r] = q0 + r < N ? lse[b * N + q0 + r] * kLog2e : INFINITY;
    cp_async_wait<0>();
    __syncthreads();

    float pt[8][4];
    scores_t<P, DP>(pt, Ks, Qs);
    scores_to_probs(pt, L2s, k0 + 16 * warp, S);
    acc_times_tile<P, NT, GS>(acc, pt, Gs);
  }

  const int64_t part = gridDim.z > 1 ? static_cast<int64_t>(blockIdx.z) * B * S * dv : 0;
  store_tiles<NT>(gv_part + part + b * S * dv + c0, dv, k0 + 16 * warp, S, dv - c0, acc, false);
}

template <int DP>
constexpr size_t dkdq_smem_floats() {
  return 2 * size_t(kBK) * (DP + 4) + 2 * size_t(kBK) * (kDvChunk + 4) + size_t(kBQ) * (kBK + 4) + 2 * kBQ;
}

// dK and dQ partials. grid = (B * n_kb, q_split); block (b, kb) takes key
// tiles kb, kb + n_kb, ... and query tiles z, z + q_split, ... gq_part: dQ
// when n_kb == 1, else n_kb partial buffers of B * N * d; gk_part: dK when
// q_split == 1, else q_split partials of B * S * d.
template <TcPrec P, int DP>
__global__ void __launch_bounds__(kThreads)
    dkdq_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                const float* __restrict__ lse, const float* __restrict__ D, const float* __restrict__ gout,
                float* __restrict__ gq_part, float* __restrict__ gk_part, int B, int N, int S, int d, int dv, int n_kb,
                int vec) {
  constexpr int RS = DP + 4, CS = kDvChunk + 4, PS = kBK + 4;
  constexpr int NTD = DP / 8;  // 16x8 tiles across d
  SAGAN_DYNAMIC_SMEM(float, smem);
  float* Ks = smem;             // [kBK][RS]
  float* Qs = Ks + kBK * RS;    // [kBQ][RS]
  float* Vc = Qs + kBQ * RS;    // [kBK][CS] V columns of one dv chunk
  float* Gc = Vc + kBK * CS;    // [kBQ][CS] dO columns of the chunk
  float* dSs = Gc + kBQ * CS;   // [kBQ][PS] dS, queries x keys
  float* L2s = dSs + kBQ * PS;  // [kBQ]
  float* Ds = L2s + kBQ;        // [kBQ]

  const int warp = static_cast<int>(threadIdx.x) / 32, g = lane_g(), t = lane_t();
  const int64_t b = blockIdx.x / n_kb;
  const int kb = static_cast<int>(blockIdx.x % n_kb);
  const int n_kt = ceil_div(S, kBK), n_qt = ceil_div(N, kBQ);
  const float* qb = q + b * N * d;
  const float* kbp = k + b * S * d;
  const float* vb = v + b * S * dv;
  const float* gb = gout + b * N * dv;
  const bool vq = vec & 1, vk = vec & 2, vv = vec & 4, vg = vec & 8;
  float* gq_dst = gq_part + static_cast<int64_t>(n_kb > 1 ? kb : 0) * B * N * d + b * N * d;
  float* gk_dst = gk_part + (gridDim.y > 1 ? static_cast<int64_t>(blockIdx.y) * B * S * d : 0) + b * S * d;

  for (int kt = kb; kt < n_kt; kt += n_kb) {
    const int k0 = kt * kBK;
    __syncthreads();  // the previous key tile's Ks is no longer read
    load_tile_async<kBK, DP, RS>(Ks, kbp, d, k0, S, 0, d, vk);
    cp_async_commit();

    float dk[NTD][4];
    SAGAN_UNROLL
    for (int n = 0; n < NTD; ++n) SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) dk[n][i] = 0.f;

    for (int qt = static_cast<int>(blockIdx.y); qt < n_qt; qt += static_cast<int>(gridDim.y)) {
      const int q0 = qt * kBQ;
      __syncthreads();  // Qs, dSs, L2s, Ds of the previous query tile are no longer read
      load_tile_async<kBQ, DP, RS>(Qs, qb, d, q0, N, 0, d, vq);
      cp_async_commit();
      for (int r = static_cast<int>(threadIdx.x); r < kBQ; r += kThreads) {
        const bool ok = q0 + r < N;
        L2s[r] = ok ? lse[b * N + q0 + r] * kLog2e : INFINITY;
        Ds[r] = ok ? D[b * N + q0 + r] : 0.f;
      }
      cp_async_wait<0>();
      __syncthreads();

      float pt[8][4];
      scores_t<P, DP>(pt, Ks, Qs);
      scores_to_probs(pt, L2s, k0 + 16 * warp, S);

      // dP^T = V dO^T over all of dv, 32 columns at a time.
      float dpt[8][4];
      SAGAN_UNROLL
      for (int j = 0; j < 8; ++j) SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) dpt[j][i] = 0.f;
      for (int c0 = 0; c0 < dv; c0 += kDvChunk) {
        __syncthreads();  // the previous chunk has been read
        load_tile_async<kBK, kDvChunk, CS>(Vc, vb, dv, k0, S, c0, dv, vv);
        load_tile_async<kBQ, kDvChunk, CS>(Gc, gb, dv, q0, N, c0, dv, vg);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        SAGAN_UNROLL
        for (int kk = 0; kk < kDvChunk / 16; ++kk) {
          const OpA<P> a = prep_a<P>(load_a<CS, true>(Vc, 16 * warp, 16 * kk));
          SAGAN_UNROLL
          for (int jp = 0; jp < 4; ++jp) {
            RawB rb[2];
            load_b2<CS, true>(rb, Gc, 16 * jp, 16 * kk);
            mma_k16<P, true>(dpt[2 * jp], a, prep_b<P>(rb[0]));
            mma_k16<P, true>(dpt[2 * jp + 1], a, prep_b<P>(rb[1]));
          }
        }
      }

      // dS^T = P^T (dP^T - D), then dK += dS^T Q; dS to shared memory,
      // transposed (queries x keys).
      SAGAN_UNROLL
      for (int j = 0; j < 8; ++j) SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int qc = 8 * j + 2 * t + (i & 1);
        pt[j][i] *= dpt[j][i] - Ds[qc];
        dSs[qc * PS + 16 * warp + g + 8 * (i / 2)] = pt[j][i];
      }
      acc_times_tile<P, NTD, RS>(dk, pt, Qs);
      __syncthreads();  // all of dS is in place

      // dQ_part = dS K for the warp's 16 queries; added to this block's
      // partial in key-tile order (the same thread owns the same elements
      // every time, so the read-modify-write needs no barrier).
      float dq[NTD][4];
      SAGAN_UNROLL
      for (int n = 0; n < NTD; ++n) SAGAN_UNROLL
      for (int i = 0; i < 4; ++i) dq[n][i] = 0.f;
      SAGAN_UNROLL
      for (int kk = 0; kk < kBK / 16; ++kk) {
        const OpA<P> a = prep_a<P>(load_a<PS, true>(dSs, 16 * warp, 16 * kk));
        SAGAN_UNROLL
        for (int n = 0; n < NTD; ++n) mma_k16<P, true>(dq[n], a, prep_b<P>(load_b_kn<RS>(Ks, 16 * kk, 8 * n)));
      }
      store_tiles<NTD>(gq_dst, d, q0 + 16 * warp, N, d, dq, kt != kb);
    }
    store_tiles<NTD>(gk_dst, d, k0 + 16 * warp, S, d, dk, false);
  }
}

// ---------------------------------------------------------------------------
// Host side.
// ---------------------------------------------------------------------------

// How a backward call is laid out: the key-tile blocks per batch element
// (n_kb, the number of dQ partials), the query split, the batch chunk, and
// the workspace regions (floats, each 64-float aligned) for one chunk.
struct BwdPlan {
  int n_kb = 1, q_split = 1, chunk = 1;
  size_t d_off = 0, dq_off = 0, dk_off = 0, dv_off = 0, floats = 0;
};

inline size_t round64(size_t n) { return (n + 63) / 64 * 64; }

// Blocks per multiprocessor the key-tile split aims at: each extra block
// per batch element costs a dQ partial (N d floats written and read back),
// so the split stops at about two per multiprocessor (SAGAN-128's generator
// at batch 64: 5 partials, 84 MB). A tuning knob for the GPU runs.
constexpr int kTargetBlocksPerSm = 2;

inline BwdPlan plan_backward(const Shape& s, int num_sms, size_t budget_bytes = kWorkspaceBudget) {
  BwdPlan p;
  const int64_t B = std::max(s.B, 1);
  const int n_kt = ceil_div(s.S, kBK), n_qt = ceil_div(std::max(s.N, 1), kBQ);
  const int64_t target = kTargetBlocksPerSm * static_cast<int64_t>(std::max(num_sms, 1));
  p.n_kb = static_cast<int>(std::min<int64_t>(n_kt, ceil_div64(target, B)));
  const int64_t blocks = B * p.n_kb;
  p.q_split = blocks >= target ? 1 : static_cast<int>(std::min<int64_t>(n_qt, ceil_div64(target, blocks)));
  auto floats_for = [&](int64_t bc) {
    size_t f = round64(size_t(bc) * s.N);  // D
    if (p.n_kb > 1) f += round64(size_t(p.n_kb) * bc * s.N * s.d);
    if (p.q_split > 1) f += round64(size_t(p.q_split) * bc * s.S * s.d) + round64(size_t(p.q_split) * bc * s.S * s.dv);
    return f;
  };
  const size_t budget = std::max<size_t>(budget_bytes / sizeof(float), 1);
  // Batch chunks cannot go below one element, and at small B the splits are
  // large: B = 1, N = S = 16384, d = 128 would want 256 dQ partials, 2 GiB,
  // twice an N x S float matrix. So the splits shrink until one element's
  // partials fit the budget (key tiles first: a dQ partial is N d floats).
  while (floats_for(1) > budget && (p.n_kb > 1 || p.q_split > 1)) {
    if (p.n_kb > 1)
      --p.n_kb;
    else
      --p.q_split;
  }
  const int64_t chunks = std::max<int64_t>(1, static_cast<int64_t>(ceil_div64(floats_for(B), budget)));
  p.chunk = static_cast<int>(ceil_div64(B, chunks));
  p.d_off = 0;
  p.dq_off = round64(size_t(p.chunk) * s.N);
  p.dk_off = p.dq_off + (p.n_kb > 1 ? round64(size_t(p.n_kb) * p.chunk * s.N * s.d) : 0);
  p.dv_off = p.dk_off + (p.q_split > 1 ? round64(size_t(p.q_split) * p.chunk * s.S * s.d) : 0);
  p.floats = floats_for(p.chunk);
  return p;
}

inline size_t backward_workspace_bytes(const Shape& s, int num_sms, size_t budget_bytes = kWorkspaceBudget) {
  return plan_backward(s, num_sms, budget_bytes).floats * sizeof(float);
}

template <class L>
void launch_sum(L& launcher, float* out, const float* parts, int nparts, int64_t n) {
  const int64_t blocks = std::min<int64_t>(ceil_div64(n, 256), 4096);
  launcher.launch(sum_parts_kernel, dim3(static_cast<unsigned>(std::max<int64_t>(blocks, 1))), dim3(256), 0, out, parts,
                  nparts, n);
}

// gq, gk, gv are overwritten. workspace: 16-byte aligned, at least
// backward_workspace_bytes(s, launcher.num_sms(), budget_bytes).
template <class L>
Status backward(L& launcher, const float* q, const float* k, const float* v, const float* out, const float* lse,
                const float* gout, float* gq, float* gk, float* gv, const Shape& s, TcPrec prec, void* workspace,
                size_t workspace_bytes, size_t budget_bytes = kWorkspaceBudget) {
  if (!shape_ok(s) || padded_d(s.d) == 0) return Status::Invalid;
  if (s.B == 0) return Status::Ok;
  if (s.N == 0) {  // no queries: no gradient reaches k or v
    launcher.zero(gk, static_cast<size_t>(s.B) * s.S * s.d);
    launcher.zero(gv, static_cast<size_t>(s.B) * s.S * s.dv);
    return Status::Ok;
  }
  const BwdPlan p = plan_backward(s, launcher.num_sms(), budget_bytes);
  if (workspace == nullptr || workspace_bytes < p.floats * sizeof(float) ||
      reinterpret_cast<uintptr_t>(workspace) % 16 != 0)
    return Status::Invalid;
  const int n_kt = ceil_div(s.S, kBK);
  const int dvt = dv_tile(s.dv);
  const int64_t n_dvt = ceil_div64(s.dv, dvt);
  if (static_cast<int64_t>(p.chunk) * n_kt > 0x7fffffff || n_dvt > 65535 ||
      ceil_div64(static_cast<int64_t>(p.chunk) * s.N, kDotWarps) > 0x7fffffff)
    return Status::Invalid;
  float* ws = static_cast<float*>(workspace);
  float* D = ws + p.d_off;

  bool ok = true;
  for (int b0 = 0; b0 < s.B && ok; b0 += p.chunk) {
    const int nb = std::min(p.chunk, s.B - b0);
    const int64_t qo = int64_t(b0) * s.N, ko = int64_t(b0) * s.S;
    const float *qc = q + qo * s.d, *kc = k + ko * s.d, *vc = v + ko * s.dv, *oc = out + qo * s.dv, *lc = lse + qo,
                *gc = gout + qo * s.dv;
    float *gqc = gq + qo * s.d, *gkc = gk + ko * s.d, *gvc = gv + ko * s.dv;
    const int vec = (rows_aligned16(qc, s.d) ? 1 : 0) | (rows_aligned16(kc, s.d) ? 2 : 0) |
                    (rows_aligned16(vc, s.dv) ? 4 : 0) | (rows_aligned16(gc, s.dv) ? 8 : 0);
    const Shape cs{nb, s.N, s.S, s.d, s.dv};
    float* gq_part = p.n_kb > 1 ? ws + p.dq_off : gqc;
    float* gk_part = p.q_split > 1 ? ws + p.dk_off : gkc;
    float* gv_part = p.q_split > 1 ? ws + p.dv_off : gvc;

    const int64_t rows = int64_t(nb) * s.N;
    launcher.launch(rows_dot_kernel<kDotWarps>, dim3(static_cast<unsigned>(ceil_div64(rows, kDotWarps))), dim3(kDotWarps * 32), 0, gc,
                    oc, D, rows, s.dv);
    const dim3 grid_v(static_cast<unsigned>(int64_t(nb) * n_kt), static_cast<unsigned>(n_dvt),
                      static_cast<unsigned>(p.q_split));
    const dim3 grid_k(static_cast<unsigned>(int64_t(nb) * p.n_kb), static_cast<unsigned>(p.q_split));
    ok = with_prec(prec, [&](auto pc) {
      constexpr TcPrec P = decltype(pc)::value;
      with_padded_d(s.d, [&](auto dp) {
        constexpr int DP = decltype(dp)::value;
        with_dv_tile(s.dv, [&](auto dvtc) {
          constexpr int DVT = decltype(dvtc)::value;
          launcher.launch(dv_kernel<P, DP, DVT>, grid_v, dim3(kThreads), dv_smem_floats<DP, DVT>() * sizeof(float), qc,
                          kc, lc, gc, gv_part, cs.B, cs.N, cs.S, cs.d, cs.dv, n_kt, vec);
        });
        launcher.launch(dkdq_kernel<P, DP>, grid_k, dim3(kThreads), dkdq_smem_floats<DP>() * sizeof(float), qc, kc, vc,
                        lc, static_cast<const float*>(D), gc, gq_part, gk_part, cs.B, cs.N, cs.S, cs.d, cs.dv, p.n_kb,
                        vec);
      });
    });
    if (p.n_kb > 1) launch_sum(launcher, gqc, gq_part, p.n_kb, rows * s.d);
    if (p.q_split > 1) {
      launch_sum(launcher, gkc, gk_part, p.q_split, int64_t(nb) * s.S * s.d);
      launch_sum(launcher, gvc, gv_part, p.q_split, int64_t(nb) * s.S * s.dv);
    }
  }
  return ok ? Status::Ok : Status::Invalid;
}

}  // namespace
}  // namespace sagan::fused::tc
