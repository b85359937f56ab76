// A float32 GEMM with a register-blocked AVX-512 micro-kernel (12 rows x 32
// columns, 24 accumulators), for products whose right operand is reused
// enough to be packed once: the Winograd conv GEMMs. Eigen 3.4's kernel
// (48 x 4, 12 accumulators) reaches about half of this machine's FMA peak
// on those shapes; this one about 90% (docs/benchmarks.md). With AVX2 and
// FMA only, the block goes as 6 x 16 pieces (16 ymm registers); with
// neither, a portable loop the compiler vectorises. The kernel is chosen at
// run time from what the CPU has, whatever -march the engine was built with.
#pragma once
#include <cstdint>

namespace sagan::cpu {

// Columns per packed panel of B.
inline constexpr int64_t kSgemmPanel = 32;

// Floats needed to pack a (K, N) operand.
inline int64_t packed_b_size(int64_t K, int64_t N) { return (N + kSgemmPanel - 1) / kSgemmPanel * kSgemmPanel * K; }

// Where sgemm_pack_b puts B's element (k, n) in bp: panel n / 32, row k,
// lane n % 32 (for code that writes a packed operand directly).
inline int64_t packed_b_index(int64_t K, int64_t k, int64_t n) {
  return (n / kSgemmPanel * K + k) * kSgemmPanel + n % kSgemmPanel;
}

// bp = B (K, N) in panels of 32 columns, [panel][k][32], zero-padded; B's
// element (k, n) is b[k * sk + n * sn] (any strides: row-major, transposed).
void sgemm_pack_b(int64_t K, int64_t N, const float* b, int64_t sk, int64_t sn, float* bp);

// C (M, N) = A (M, K) @ B (+ C when accumulate), C row-major with leading
// dimension ldc, A's element (i, k) at a[i * si + k * sk], B packed by
// sgemm_pack_b. Runs on the calling thread inside a parallel region, and
// over the available OpenMP threads outside one when the product is large.
void sgemm_packed(int64_t M, int64_t N, int64_t K, const float* a, int64_t si, int64_t sk, const float* bp, float* c,
                  int64_t ldc, bool accumulate);

// The micro-kernels; sgemm_packed runs sgemm_kernel(), the best this CPU
// supports.
enum class SgemmKernel { Portable, Avx2, Avx512 };
SgemmKernel sgemm_kernel();
bool sgemm_kernel_supported(SgemmKernel k);
const char* sgemm_kernel_name(SgemmKernel k);  // "portable", "avx2", "avx512"

// sgemm_packed on a given kernel (tests, benchmarks); one this CPU does not
// support throws.
void sgemm_packed_with(SgemmKernel kernel, int64_t M, int64_t N, int64_t K, const float* a, int64_t si, int64_t sk,
                       const float* bp, float* c, int64_t ldc, bool accumulate);

}  // namespace sagan::cpu
