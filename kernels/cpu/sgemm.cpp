// Packed-B float32 GEMM (see sgemm.h). The AVX-512 micro-kernel keeps a 12 x 32 block
// of C in 24 zmm registers and, per step along K, loads one 32-float row of
// the packed B panel (2 zmm) and broadcasts 12 elements of A: 24 FMAs per 14
// loads, so the FMA unit, not the load ports, is the limit. A is read in
// place through two strides (no packing), which costs nothing measurable
// because its 12 rows stay in L1 while the panel streams from L2.
#include "sagan/kernels/cpu/sgemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace sagan::cpu {

namespace {

constexpr int kMr = 12;
constexpr int64_t kNr = kSgemmPanel;

#if defined(__AVX512F__)
inline __mmask16 lane_mask(int valid) {
  return valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1u);
}

// c (MR, nvalid) (+)= a (MR, K) @ one packed panel (K, 32).
template <int MR>
void micro(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c, int64_t ldc, int nvalid,
           bool accumulate) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k, a += sk, bp += kNr) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * si]);
      c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
    }
  }
  const __mmask16 m0 = lane_mask(nvalid), m1 = lane_mask(nvalid - 16);
  for (int i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    if (accumulate) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, row));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, c0[i]);
    _mm512_mask_storeu_ps(row + 16, m1, c1[i]);
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
// AVX2 has 16 ymm registers of 8 floats: the 12 x 32 block of C (48
// registers) would spill on every step along K. So the block goes as row
// groups of up to 6 against each 16-column half of the panel: 12
// accumulators, 2 loads of B and one broadcast of A, 12 FMAs per 8 loads.
// The halves read A twice; its 12 rows stay in L1. Every loop over the rows
// is unrolled: GCC otherwise keeps the accumulator arrays in memory and
// stores all 12 on each step along K (measured: no faster than the
// portable loop, against 2.3-3x with the unrolling).
inline __m256i lane_mask8(int valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// c (R, nvalid <= 16) (+)= a (R, K) @ 16 columns of a packed panel.
template <int R>
void micro_half(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c, int64_t ldc, int nvalid,
                bool accumulate) {
  __m256 c0[R], c1[R];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k, a += sk, bp += kNr) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * si);
      c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
    }
  }
  if (nvalid == 16) {  // plain stores: AMD runs masked ones as microcode (with them, slower than the loop)
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      float* row = c + i * ldc;
      if (accumulate) {
        c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(row));
        c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, c0[i]);
      _mm256_storeu_ps(row + 8, c1[i]);
    }
    return;
  }
  const __m256i m0 = lane_mask8(nvalid), m1 = lane_mask8(nvalid - 8);
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    float* row = c + i * ldc;
    if (accumulate) {
      c0[i] = _mm256_add_ps(c0[i], _mm256_maskload_ps(row, m0));
      c1[i] = _mm256_add_ps(c1[i], _mm256_maskload_ps(row + 8, m1));
    }
    _mm256_maskstore_ps(row, m0, c0[i]);
    _mm256_maskstore_ps(row + 8, m1, c1[i]);
  }
}

using HalfFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t, int, bool);
constexpr HalfFn kHalf[7] = {nullptr, micro_half<1>, micro_half<2>, micro_half<3>,
                             micro_half<4>, micro_half<5>, micro_half<6>};

// c (MR, nvalid) (+)= a (MR, K) @ one packed panel (K, 32).
template <int MR>
void micro(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c, int64_t ldc, int nvalid,
           bool accumulate) {
  for (int half = 0; half < 2 && nvalid > 16 * half; ++half)
    for (int i = 0; i < MR; i += 6)
      kHalf[std::min(6, MR - i)](K, a + i * si, si, sk, bp + 16 * half, c + i * ldc + 16 * half, ldc,
                                 std::min(16, nvalid - 16 * half), accumulate);
}
#else
// Portable version of the same blocking; compilers vectorise the j loops.
template <int MR>
void micro(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c, int64_t ldc, int nvalid,
           bool accumulate) {
  float acc[MR][kNr] = {};
  for (int64_t k = 0; k < K; ++k, a += sk, bp += kNr)
    for (int i = 0; i < MR; ++i) {
      const float av = a[i * si];
      for (int64_t j = 0; j < kNr; ++j) acc[i][j] += av * bp[j];
    }
  for (int i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    for (int j = 0; j < nvalid; ++j) row[j] = accumulate ? row[j] + acc[i][j] : acc[i][j];
  }
}
#endif

using MicroFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t, int, bool);
constexpr MicroFn kMicro[kMr + 1] = {nullptr,  micro<1>, micro<2>, micro<3>,  micro<4>,  micro<5>, micro<6>,
                                     micro<7>, micro<8>, micro<9>, micro<10>, micro<11>, micro<12>};

}  // namespace

void sgemm_pack_b(int64_t K, int64_t N, const float* b, int64_t sk, int64_t sn, float* bp) {
  const int64_t panels = (N + kNr - 1) / kNr;
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t n0 = p * kNr, nv = std::min(kNr, N - n0);
    for (int64_t k = 0; k < K; ++k) {
      float* dst = bp + (p * K + k) * kNr;
      const float* src = b + k * sk + n0 * sn;
      if (sn == 1) {
        std::memcpy(dst, src, static_cast<size_t>(nv) * sizeof(float));
      } else {
        for (int64_t j = 0; j < nv; ++j) dst[j] = src[j * sn];
      }
      std::fill(dst + nv, dst + kNr, 0.0f);
    }
  }
}

void sgemm_packed(int64_t M, int64_t N, int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c,
                  int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.0f);
    return;
  }
  const int64_t panels = (N + kNr - 1) / kNr, mblocks = (M + kMr - 1) / kMr;
  auto tile = [&](int64_t p, int64_t mb) {
    const int64_t i0 = mb * kMr, n0 = p * kNr;
    const int mr = static_cast<int>(std::min<int64_t>(kMr, M - i0));
    kMicro[mr](K, a + i0 * si, si, sk, bp + p * K * kNr, c + i0 * ldc + n0, ldc,
               static_cast<int>(std::min(kNr, N - n0)), accumulate);
  };
  const double flops = 2.0 * double(M) * double(N) * double(K);
  if (!omp_in_parallel() && omp_get_max_threads() > 1 && flops >= 4e6) {
    // Panels outermost so that each thread keeps its B panels.
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t mb = 0; mb < mblocks; ++mb) tile(p, mb);
  } else {
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t mb = 0; mb < mblocks; ++mb) tile(p, mb);
  }
}

}  // namespace sagan::cpu
