// Warp-level tile products on tensor cores in three precisions, for the
// fused attention kernels: float32 operands are read from shared memory (or
// taken from accumulator registers) as "raw" fragments and converted per
// precision just before the mma:
//
//   TcPrec::F32   3xTF32: x = big + small, big = tf32(x), small =
//                 tf32(x - big) (x - big is exact in float32); a b is
//                 a_small b_big + a_big b_small + a_big b_big, the small
//                 terms first (CUTLASS's OpMultiplyAddFastF32 idea). The
//                 dropped a_small b_small and the rounding of the small parts
//                 leave ~2^-22 relative per product: float32-class.
//   TcPrec::TF32  one m16n8k8 TF32 mma per 8 of k; operands rounded to
//                 nearest, ties away (2^-11 relative).
//   TcPrec::BF16  one m16n8k16 BF16 mma per 16 of k; operands rounded to
//                 nearest even (2^-8 relative).
// All accumulate in float32.
//
// A k16 step is the unit: two TF32 k8 halves, or one BF16 k16. A raw A
// fragment (16 rows x 16 k) holds, for k8 half h, v[4h + 0..3] = the TF32
// A layout's elements (g, t), (g+8, t), (g, t+4), (g+8, t+4) (g = lane/4,
// t = lane%4). A raw B fragment (16 k x 8 columns) holds v[2h + 0..1] =
// (k t, n g), (k t+4, n g). For BF16 the k index is permuted inside each k8
// half (TF32 k position t -> BF16 position 2t, t+4 -> 2t+1), the same for
// A and B, so a dot product over k is unchanged and the same raw fragments
// (and the same ldmatrix loads) serve all three precisions. A tile whose k
// width is 8 has no upper half (HI = false): its BF16 upper half is zero
// and TF32 skips it.
//
// Raw fragments come from
//   - ldmatrix on a row-major float tile (A: rows = m, columns = k;
//     B: rows = n, columns = k): load_a / load_b2, natural k order;
//   - scalar loads of a [k][n] tile: load_b_kn (natural k order) or
//     load_b_kn_paired (k positions t, t+4 of half h = rows 2t, 2t+1 of
//     that half), the order that matches an A taken from accumulators;
//   - accumulators: the C layout of two adjacent 16x8 tiles ((g, 2t),
//     (g, 2t+1), (g+8, 2t), (g+8, 2t+1)) is an A fragment in paired k order:
//     a_from_acc. This keeps P (and dS) in registers between two products,
//     as FlashAttention-2 does.
#pragma once
#include "sagan/kernels/cuda/warp_mma.cuh"

namespace sagan::fused {
namespace {

enum class TcPrec : int { F32 = 0, TF32 = 1, BF16 = 2 };

struct RawA {
  float v[8];
};
struct RawB {
  float v[4];
};

__device__ __forceinline__ float word_as_float(uint32_t w) {
#if defined(__CUDACC__)
  return __uint_as_float(w);
#else
  float f;
  std::memcpy(&f, &w, 4);
  return f;
#endif
}

__device__ __forceinline__ int lane_g() { return (static_cast<int>(threadIdx.x) & 31) >> 2; }
__device__ __forceinline__ int lane_t() { return static_cast<int>(threadIdx.x) & 3; }

// ---- raw fragment loads ----

// A: rows r0..r0+15, k columns c0..c0+15 (c0..c0+7 when !HI) of a row-major
// float tile with row stride RS (a multiple of 4; RS/4 odd avoids bank
// conflicts). Rows must be 16-byte aligned.
template <int RS, bool HI>
__device__ __forceinline__ RawA load_a(const float* tile, int r0, int c0) {
  const int l = static_cast<int>(threadIdx.x) & 31;
  const float* p = tile + (r0 + (l & 7) + ((l >> 3) & 1) * 8) * RS + c0 + (l >> 4) * 4;
  RawA a;
  uint32_t u[4];
  ldmatrix_x4(u, p);
  SAGAN_UNROLL
  for (int i = 0; i < 4; ++i) a.v[i] = word_as_float(u[i]);
  if (HI) {
    ldmatrix_x4(u, p + 8);
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) a.v[4 + i] = word_as_float(u[i]);
  } else {
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) a.v[4 + i] = 0.f;
  }
  return a;
}

// B for two adjacent 8-column tiles, columns n0..n0+15, k c0..c0+15, from a
// tile stored n-major (row n holds that column's k values, stride RS).
template <int RS, bool HI>
__device__ __forceinline__ void load_b2(RawB (&b)[2], const float* tile, int n0, int c0) {
  const int l = static_cast<int>(threadIdx.x) & 31;
  const float* p = tile + (n0 + (l & 7) + (l >> 4) * 8) * RS + c0 + ((l >> 3) & 1) * 4;
  uint32_t u[4];
  ldmatrix_x4(u, p);
  b[0].v[0] = word_as_float(u[0]);
  b[0].v[1] = word_as_float(u[1]);
  b[1].v[0] = word_as_float(u[2]);
  b[1].v[1] = word_as_float(u[3]);
  if (HI) {
    ldmatrix_x4(u, p + 8);
    b[0].v[2] = word_as_float(u[0]);
    b[0].v[3] = word_as_float(u[1]);
    b[1].v[2] = word_as_float(u[2]);
    b[1].v[3] = word_as_float(u[3]);
  } else {
    b[0].v[2] = b[0].v[3] = b[1].v[2] = b[1].v[3] = 0.f;
  }
}

// B, one 8-column tile (columns n0..n0+7, k k0..k0+15) from a k-major tile
// (row k holds the n values, stride RS), natural k order.
template <int RS>
__device__ __forceinline__ RawB load_b_kn(const float* tile, int k0, int n0) {
  const float* p = tile + (k0 + lane_t()) * RS + n0 + lane_g();
  return RawB{{p[0], p[4 * RS], p[8 * RS], p[12 * RS]}};
}

// The same in paired k order (to multiply an A taken from accumulators).
template <int RS>
__device__ __forceinline__ RawB load_b_kn_paired(const float* tile, int k0, int n0) {
  const float* p = tile + (k0 + 2 * lane_t()) * RS + n0 + lane_g();
  return RawB{{p[0], p[RS], p[8 * RS], p[9 * RS]}};
}

// Accumulator tiles c0 (columns 0..7 of a 16-column block) and c1 (8..15)
// as an A fragment with those 16 columns as k, paired order.
__device__ __forceinline__ RawA a_from_acc(const float (&c0)[4], const float (&c1)[4]) {
  return RawA{{c0[0], c0[2], c0[1], c0[3], c1[0], c1[2], c1[1], c1[3]}};
}

// ---- per-precision operands ----

template <TcPrec P>
struct OpA {
  // BF16: one m16n8k16 operand; TF32: the two k8 halves; F32: big halves,
  // then small halves.
  uint32_t r[P == TcPrec::BF16 ? 4 : P == TcPrec::TF32 ? 8 : 16];
};
template <TcPrec P>
struct OpB {
  uint32_t r[P == TcPrec::BF16 ? 2 : P == TcPrec::TF32 ? 4 : 8];
};

__device__ __forceinline__ void split_tf32(float x, uint32_t& big, uint32_t& small) {
  big = f32_to_tf32(x);
  // Masked before use as a float: PTX leaves the tf32 register layout
  // implementation-defined (CUTLASS masks too); x - big is then exact.
  small = f32_to_tf32(x - word_as_float(big & 0xffffe000u));
}

template <TcPrec P>
__device__ __forceinline__ OpA<P> prep_a(const RawA& a) {
  OpA<P> o;
  if constexpr (P == TcPrec::BF16) {
    // BF16 positions (2t, 2t+1) of half h = TF32 positions (t, t+4).
    o.r[0] = pack_bf16x2(a.v[0], a.v[2]);
    o.r[1] = pack_bf16x2(a.v[1], a.v[3]);
    o.r[2] = pack_bf16x2(a.v[4], a.v[6]);
    o.r[3] = pack_bf16x2(a.v[5], a.v[7]);
  } else if constexpr (P == TcPrec::TF32) {
    SAGAN_UNROLL
    for (int i = 0; i < 8; ++i) o.r[i] = f32_to_tf32(a.v[i]);
  } else {
    SAGAN_UNROLL
    for (int i = 0; i < 8; ++i) split_tf32(a.v[i], o.r[i], o.r[8 + i]);
  }
  return o;
}

template <TcPrec P>
__device__ __forceinline__ OpB<P> prep_b(const RawB& b) {
  OpB<P> o;
  if constexpr (P == TcPrec::BF16) {
    o.r[0] = pack_bf16x2(b.v[0], b.v[1]);
    o.r[1] = pack_bf16x2(b.v[2], b.v[3]);
  } else if constexpr (P == TcPrec::TF32) {
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) o.r[i] = f32_to_tf32(b.v[i]);
  } else {
    SAGAN_UNROLL
    for (int i = 0; i < 4; ++i) split_tf32(b.v[i], o.r[i], o.r[4 + i]);
  }
  return o;
}

// c += A B over one k16 step (one k8 half when !HI; BF16 then multiplies a
// zero upper half).
template <TcPrec P, bool HI>
__device__ __forceinline__ void mma_k16(float (&c)[4], const OpA<P>& a, const OpB<P>& b) {
  if constexpr (P == TcPrec::BF16) {
    mma_bf16_16x8x16(c, a.r, b.r);
  } else {
    constexpr int NH = HI ? 2 : 1;
    SAGAN_UNROLL
    for (int h = 0; h < NH; ++h) {
      if constexpr (P == TcPrec::F32) {
        mma_tf32_16x8x8(c, a.r + 8 + 4 * h, b.r + 2 * h);  // small x big
        mma_tf32_16x8x8(c, a.r + 4 * h, b.r + 4 + 2 * h);  // big x small
      }
      mma_tf32_16x8x8(c, a.r + 4 * h, b.r + 2 * h);  // big x big
    }
  }
}

}  // namespace
}  // namespace sagan::fused
