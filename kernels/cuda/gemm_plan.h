// How a row-major batched GEMM becomes one cuBLAS strided-batched call: pure
// host arithmetic, apart from gemm.cu so that tests/test_gemm_emu.cpp can
// check it on the CPU against a model of cuBLAS's column-major contract
// (argument checks included) without a GPU.
//
// cuBLAS is column-major. A row-major (M,N) matrix is the column-major (N,M)
// matrix of its transpose, so C = A B is computed as C^T = B^T A^T: cuBLAS
// gets (m, n) = (N, M), B first, then A. A row-major operand (unit stride on
// its last dim) is passed untransposed with ld = its row stride; a
// column-major one (unit stride on its second-last dim) is a row-major
// matrix of the transpose, passed with the transpose flag.
#pragma once
#include <algorithm>
#include <cstdint>

#include "sagan/core/tensor.h"

namespace sagan::cuda {

// One (batch, rows, cols) operand with strides (s0, s1, s2) as cuBLAS can
// read it in place: row-major with ld = its row stride (trans = false), or
// stored as the row-major (cols, rows) matrix with ld = its column stride
// (trans = true). ok = false when neither inner stride is 1 (or fits a
// single row or column): the caller copies it to a dense tensor first. An
// empty operand is always ok. A batch of one gets batch stride 0, which
// cuBLAS reads as a broadcast.
struct GemmOperand {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0, batch_stride = 0;
};

inline GemmOperand gemm_operand(int64_t batch, int64_t rows, int64_t cols, int64_t s0, int64_t s1, int64_t s2) {
  GemmOperand o;
  o.batch_stride = batch == 1 ? 0 : s0;
  if (rows == 0 || cols == 0) {  // nothing is read (K = 0 takes the scale kernel)
    o.ok = true, o.trans = false, o.ld = std::max<int64_t>(cols, 1);
  } else if ((s2 == 1 || cols == 1) && (rows == 1 || s1 >= cols)) {
    o.ok = true, o.trans = false, o.ld = s1;          // any for one row: cublas_gemm_args raises it
  } else if ((s1 == 1 || rows == 1) && s2 >= rows) {  // cols > 1 here
    o.ok = true, o.trans = true, o.ld = s2;
  }
  return o;
}

// The same for a 3-d tensor.
inline GemmOperand gemm_operand(const Tensor& t) {
  return gemm_operand(t.size(0), t.size(1), t.size(2), t.strides()[0], t.strides()[1], t.strides()[2]);
}

// The elements a strided-batched operand may read, as one range from its
// base: `batch` matrices at `batch_stride` (0: one matrix read by every
// batch) of `rows` rows of `cols` contiguous elements at row stride `ld`,
// the operand as stored (a transposed operand's stored rows are its
// columns). --precision bf16 rounds this range into a bf16 temporary of the
// same layout for cuBLAS to read in place of the operand. 0 when empty.
inline int64_t gemm_operand_span(int64_t batch, int64_t batch_stride, int64_t rows, int64_t cols, int64_t ld) {
  if (batch == 0 || rows == 0 || cols == 0) return 0;
  return (batch - 1) * batch_stride + (rows - 1) * ld + cols;
}

// The spans of blas.h's row-major gemm operands A (M x K, stored K x M when
// trans_a) and B (K x N, stored N x K when trans_b), which gemm.cu rounds
// into bf16 copies under --precision bf16.
struct GemmOperandSpans {
  int64_t a = 0, b = 0;
};
inline GemmOperandSpans gemm_operand_spans(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda,
                                           int64_t stride_a, int64_t ldb, int64_t stride_b, int64_t batch) {
  return {gemm_operand_span(batch, stride_a, trans_a ? K : M, trans_a ? M : K, lda),
          gemm_operand_span(batch, stride_b, trans_b ? N : K, trans_b ? K : N, ldb)};
}

// The arguments of cublas<t>gemmStridedBatched for row-major
// C[b] (M,N) = alpha op(A[b]) op(B[b]) + beta C[b] (blas.h's gemm): cuBLAS's
// first operand is B, its second A.
struct CublasGemmArgs {
  bool trans_first = false, trans_second = false;  // CUBLAS_OP_T when set
  int64_t m = 0, n = 0, k = 0;
  int64_t ld_first = 0, stride_first = 0;    // B
  int64_t ld_second = 0, stride_second = 0;  // A
  int64_t ldc = 0, stride_c = 0, batch = 0;
};

inline CublasGemmArgs cublas_gemm_args(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda,
                                       int64_t stride_a, int64_t ldb, int64_t stride_b, int64_t ldc, int64_t stride_c,
                                       int64_t batch) {
  CublasGemmArgs g;
  g.trans_first = trans_b, g.trans_second = trans_a;
  g.m = N, g.n = M, g.k = K;
  // cuBLAS wants ld >= the rows of the column-major view even when that
  // dimension has a single row or column (and any stride is valid then).
  g.ld_first = std::max<int64_t>(ldb, trans_b ? K : N), g.stride_first = stride_b;
  g.ld_second = std::max<int64_t>(lda, trans_a ? M : K), g.stride_second = stride_a;
  g.ldc = ldc, g.stride_c = stride_c, g.batch = batch;
  return g;
}

}  // namespace sagan::cuda
