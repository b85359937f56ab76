// Blocked matrix transpose for the CPU kernels (the Winograd convolutions'
// NCHW <-> NHWC copies), with 16x16 float blocks in registers: one
// AVX-512 transpose, or four AVX2 8x8 ones, whichever the file including
// this is compiled for. Internal linkage (an unnamed namespace), so that a
// file compiled with other instruction-set flags (tests/CMakeLists.txt
// compiles tests/test_transpose_blocks.cpp once per instruction set) gets
// its own copy rather than the linker's pick of one.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace sagan::cpu {
namespace {

#if defined(__AVX512F__)
// dst's 16 rows (stride ds) = the 16 columns of src's 16 rows (stride ss),
// in registers: the scalar loop's 256 strided copies took 9% of a CPU
// training step. After the first two steps r[4i + c] holds, in 128-bit
// lane L, column 4L + c of rows 4i..4i+3; the last two gather a column's
// four lanes.
inline void transpose16(const float* src, int64_t ss, float* dst, int64_t ds) {
  // The zero-masked forms with every lane kept: GCC 12 warns inside the
  // plain forms' header that their undefined pass-through operand is
  // uninitialised (GCC bug 105593); the mask costs nothing.
  constexpr __mmask16 kAll = 0xFFFF;
  auto unpack_lo32 = [](__m512 a, __m512 b) { return _mm512_maskz_unpacklo_ps(kAll, a, b); };
  auto unpack_hi32 = [](__m512 a, __m512 b) { return _mm512_maskz_unpackhi_ps(kAll, a, b); };
  auto unpack_lo64 = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, _mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  auto unpack_hi64 = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, _mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  auto lanes = [](__m512 a, __m512 b, auto imm) {
    return _mm512_maskz_shuffle_f32x4(kAll, a, b, decltype(imm)::value);
  };
  using L0101 = std::integral_constant<int, 0x44>;  // lanes 0, 1 of a, then of b
  using L2323 = std::integral_constant<int, 0xEE>;  // lanes 2, 3 of a, then of b
  using L0202 = std::integral_constant<int, 0x88>;  // lanes 0, 2 of a, then of b
  using L1313 = std::integral_constant<int, 0xDD>;  // lanes 1, 3 of a, then of b
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; ++i) {  // pairs of rows, 32-bit interleave
    t[2 * i] = unpack_lo32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpack_hi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // quads of rows, 64-bit interleave
    r[4 * i] = unpack_lo64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = unpack_hi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = unpack_lo64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = unpack_hi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    // lanes 0, 1 (and 2, 3) of rows 0-3 and 4-7, and of rows 8-11 and 12-15
    const __m512 a01 = lanes(r[c], r[4 + c], L0101{}), a23 = lanes(r[c], r[4 + c], L2323{});
    const __m512 b01 = lanes(r[8 + c], r[12 + c], L0101{}), b23 = lanes(r[8 + c], r[12 + c], L2323{});
    _mm512_storeu_ps(dst + (0 + c) * ds, lanes(a01, b01, L0202{}));  // column c
    _mm512_storeu_ps(dst + (4 + c) * ds, lanes(a01, b01, L1313{}));
    _mm512_storeu_ps(dst + (8 + c) * ds, lanes(a23, b23, L0202{}));
    _mm512_storeu_ps(dst + (12 + c) * ds, lanes(a23, b23, L1313{}));
  }
}
#elif defined(__AVX2__)
// dst's 8 rows (stride ds) = the 8 columns of src's 8 rows (stride ss), in
// registers (the scalar loop took a quarter of a Winograd conv's time on an
// AVX2 machine). After the unpacks and shuffles s[c] holds, in 128-bit lane
// L, column c + 4L of rows 0-3 (s[0..3]) or 4-7 (s[4..7]).
inline void transpose8(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m256 r[8], t[8], q[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 4; ++i) {  // pairs of rows, 32-bit interleave
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // quads of rows: 0-3, then 4-7
    const int o = 4 * h;
    q[o + 0] = _mm256_shuffle_ps(t[o + 0], t[o + 2], 0x44);
    q[o + 1] = _mm256_shuffle_ps(t[o + 0], t[o + 2], 0xEE);
    q[o + 2] = _mm256_shuffle_ps(t[o + 1], t[o + 3], 0x44);
    q[o + 3] = _mm256_shuffle_ps(t[o + 1], t[o + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * ds, _mm256_permute2f128_ps(q[c], q[4 + c], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * ds, _mm256_permute2f128_ps(q[c], q[4 + c], 0x31));
  }
}
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
// A whole 16x16 float block in registers.
inline void transpose_block16(const float* src, int64_t ss, float* dst, int64_t ds) {
#if defined(__AVX512F__)
  transpose16(src, ss, dst, ds);
#else
  for (int64_t i = 0; i < 16; i += 8)
    for (int64_t j = 0; j < 16; j += 8) transpose8(src + i * ss + j, ss, dst + j * ds + i, ds);
#endif
}
#endif

// dst (cols, rows) = src (rows, cols)^T, both row-major, in 16x16 blocks
// that stay in L1 (in registers for float32 with AVX-512 or AVX2).
template <class T>
inline void transpose(const T* __restrict src, int64_t rows, int64_t cols, T* __restrict dst) {
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
#if defined(__AVX512F__) || defined(__AVX2__)
      if constexpr (std::is_same_v<T, float>) {
        if (r1 - r0 == kB && c1 - c0 == kB) {
          transpose_block16(src + r0 * cols + c0, cols, dst + c0 * rows + r0, rows);
          continue;
        }
      }
#endif
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
    }
}

}  // namespace
}  // namespace sagan::cpu
