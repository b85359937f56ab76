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

#include "sagan/core/error.h"

// The vector kernels are compiled for their instruction sets with GCC's
// target attribute whatever -march the engine gets, and sgemm_packed picks
// one at run time (sgemm_kernel()): a portable build (SAGAN_NATIVE=OFF: the
// device bundle, the sanitizer build, packages) runs the AVX2 or AVX-512
// kernel where the CPU has it, not the portable loop (3.4-3.9x slower on a
// Zen 3 core: docs/benchmarks.md, "AVX2 machines").
#if defined(__x86_64__) || defined(__i386__)
#define SAGAN_SGEMM_X86 1
#include <immintrin.h>
#define SAGAN_TARGET_AVX512 [[gnu::target("avx512f")]]
#define SAGAN_TARGET_AVX2 [[gnu::target("avx2,fma")]]
#endif

namespace sagan::cpu {

namespace {

constexpr int kMr = 12;
constexpr int64_t kNr = kSgemmPanel;

#if defined(SAGAN_SGEMM_X86)
SAGAN_TARGET_AVX512 inline __mmask16 lane_mask(int valid) {
  return valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1u);
}

// c (MR, nvalid) (+)= a (MR, K) @ one packed panel (K, 32).
template <int MR>
SAGAN_TARGET_AVX512 void micro_avx512(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c,
                                      int64_t ldc, int nvalid, bool accumulate) {
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

// AVX2 has 16 ymm registers of 8 floats: the 12 x 32 block of C (48
// registers) would spill on every step along K. So the block goes as row
// groups of up to 6 against each 16-column half of the panel: 12
// accumulators, 2 loads of B and one broadcast of A, 12 FMAs per 8 loads.
// The halves read A twice; its 12 rows stay in L1. Every loop over the rows
// is unrolled: GCC otherwise keeps the accumulator arrays in memory and
// stores all 12 on each step along K (measured: no faster than the
// portable loop, against 2.3-3x with the unrolling).
SAGAN_TARGET_AVX2 inline __m256i lane_mask8(int valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// c (R, nvalid <= 16) (+)= a (R, K) @ 16 columns of a packed panel.
template <int R>
SAGAN_TARGET_AVX2 void micro_half(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c,
                                  int64_t ldc, int nvalid, bool accumulate) {
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
SAGAN_TARGET_AVX2 void micro_avx2(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c,
                                  int64_t ldc, int nvalid, bool accumulate) {
  for (int half = 0; half < 2 && nvalid > 16 * half; ++half)
    for (int i = 0; i < MR; i += 6)
      kHalf[std::min(6, MR - i)](K, a + i * si, si, sk, bp + 16 * half, c + i * ldc + 16 * half, ldc,
                                 std::min(16, nvalid - 16 * half), accumulate);
}
#endif  // SAGAN_SGEMM_X86

// Portable version of the same blocking; compilers vectorise the j loops.
template <int MR>
void micro_portable(int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c, int64_t ldc,
                    int nvalid, bool accumulate) {
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

using MicroFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t, int, bool);

// Each kernel by the rows of its block, 1..12.
constexpr MicroFn kPortable[kMr + 1] = {nullptr,           micro_portable<1>, micro_portable<2>,  micro_portable<3>,
                                        micro_portable<4>, micro_portable<5>, micro_portable<6>,  micro_portable<7>,
                                        micro_portable<8>, micro_portable<9>, micro_portable<10>, micro_portable<11>,
                                        micro_portable<12>};
#if defined(SAGAN_SGEMM_X86)
constexpr MicroFn kAvx2[kMr + 1] = {nullptr,        micro_avx2<1>,  micro_avx2<2>, micro_avx2<3>, micro_avx2<4>,
                                    micro_avx2<5>,  micro_avx2<6>,  micro_avx2<7>, micro_avx2<8>, micro_avx2<9>,
                                    micro_avx2<10>, micro_avx2<11>, micro_avx2<12>};
constexpr MicroFn kAvx512[kMr + 1] = {nullptr,         micro_avx512<1>, micro_avx512<2>,  micro_avx512<3>,
                                      micro_avx512<4>, micro_avx512<5>, micro_avx512<6>,  micro_avx512<7>,
                                      micro_avx512<8>, micro_avx512<9>, micro_avx512<10>, micro_avx512<11>,
                                      micro_avx512<12>};
#endif

const MicroFn* table_of(SgemmKernel k) {
  switch (k) {
#if defined(SAGAN_SGEMM_X86)
    case SgemmKernel::Avx512:
      return kAvx512;
    case SgemmKernel::Avx2:
      return kAvx2;
#endif
    default:
      return kPortable;
  }
}

// C = A @ B (+ C) on the given kernel's table (sgemm_packed's contract).
void packed_on(const MicroFn* micro, int64_t M, int64_t N, int64_t K, const float* a, int64_t si, int64_t sk,
               const float* bp, float* c, int64_t ldc, bool accumulate) {
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
    micro[mr](K, a + i0 * si, si, sk, bp + p * K * kNr, c + i0 * ldc + n0, ldc, static_cast<int>(std::min(kNr, N - n0)),
              accumulate);
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

}  // namespace

const char* sgemm_kernel_name(SgemmKernel k) {
  switch (k) {
    case SgemmKernel::Avx512:
      return "avx512";
    case SgemmKernel::Avx2:
      return "avx2";
    case SgemmKernel::Portable:
      break;
  }
  return "portable";
}

bool sgemm_kernel_supported(SgemmKernel k) {
  switch (k) {
#if defined(SAGAN_SGEMM_X86)
    case SgemmKernel::Avx512:
      return __builtin_cpu_supports("avx512f");
    case SgemmKernel::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    case SgemmKernel::Avx512:
    case SgemmKernel::Avx2:
      return false;
#endif
    case SgemmKernel::Portable:
      break;
  }
  return true;
}

SgemmKernel sgemm_kernel() {
  static const SgemmKernel best = sgemm_kernel_supported(SgemmKernel::Avx512) ? SgemmKernel::Avx512
                                  : sgemm_kernel_supported(SgemmKernel::Avx2) ? SgemmKernel::Avx2
                                                                              : SgemmKernel::Portable;
  return best;
}

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
  packed_on(table_of(sgemm_kernel()), M, N, K, a, si, sk, bp, c, ldc, accumulate);
}

void sgemm_packed_with(SgemmKernel kernel, int64_t M, int64_t N, int64_t K, const float* a, int64_t si, int64_t sk,
                       const float* bp, float* c, int64_t ldc, bool accumulate) {
  SAGAN_CHECK(sgemm_kernel_supported(kernel), "sgemm: this CPU cannot run the {} kernel", sgemm_kernel_name(kernel));
  packed_on(table_of(kernel), M, N, K, a, si, sk, bp, c, ldc, accumulate);
}

}  // namespace sagan::cpu
