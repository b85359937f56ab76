// bmm through cuBLAS strided-batched GEMM (float and double). float32 under
// --precision bf16 (core/matmul_precision.h) rounds A and B to bf16 (nearest
// even, as the CPU backend's emulation does) into temporaries of the same
// layout and runs cublasGemmStridedBatchedEx on them with float32 C and
// CUBLAS_COMPUTE_32F: float32 accumulation from exactly bf16 operands.
// (CUBLAS_COMPUTE_32F_FAST_16BF on float32 operands would only permit
// rounding, to bf16 or to TF32, cublas_api.h, so results could follow
// neither the CPU nor the named precision.) tf32 sets the handle's TF32 math
// (CudaBackend::cublas). The row-major to column-major mapping is
// gemm_plan.h's, tested on the CPU.
#include "sagan/core/matmul_precision.h"
#include "sagan/kernels/cuda/bf16_convert.cuh"
#include "sagan/kernels/cuda/blas.h"
#include "sagan/kernels/cuda/cublas_api.h"
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/gemm_kernels.cuh"
#include "sagan/kernels/cuda/gemm_plan.h"
#include "sagan/kernels/cuda/launch.cuh"

namespace sagan {

namespace cuda {
namespace {

cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                         const float* alpha, const float* a, int64_t lda, int64_t sa, const float* b, int64_t ldb,
                         int64_t sb, const float* beta, float* c, int64_t ldc, int64_t sc, int64_t batch) {
  return cublas_api().cublasSgemmStridedBatched_64(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc,
                                                   batch);
}
cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                         const double* alpha, const double* a, int64_t lda, int64_t sa, const double* b, int64_t ldb,
                         int64_t sb, const double* beta, double* c, int64_t ldc, int64_t sc, int64_t batch) {
  return cublas_api().cublasDgemmStridedBatched_64(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc,
                                                   batch);
}

}  // namespace

template <class T>
void gemm(CudaBackend& be, const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
          const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
          int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  DeviceGuard guard(be.index());
  if (K == 0) {
    const int64_t total = batch * M * N;
    scale_kernel<T><<<blocks_for(total), kBlock, 0, be.stream()>>>(C, M, N, ldc, stride_c, total, beta);
    check_launch(op, "scale_kernel", be.stream());
    return;
  }
  const CublasGemmArgs g =
      cublas_gemm_args(trans_a, trans_b, M, N, K, lda, stride_a, ldb, stride_b, ldc, stride_c, batch);
  cublasHandle_t h = be.cublas(/*allow_tf32=*/std::is_same_v<T, float>);
  const cublasOperation_t op_first = g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N;
  if constexpr (std::is_same_v<T, float>) {
    if (matmul_precision() == MatmulPrecision::Bf16) {
      const GemmOperandSpans span = gemm_operand_spans(trans_a, trans_b, M, N, K, lda, stride_a, ldb, stride_b, batch);
      const Buffer a16 = bf16_copy(be, op, A, span.a), b16 = bf16_copy(be, op, B, span.b);
      const cublasStatus_t st = cublas_api().cublasGemmStridedBatchedEx_64(
          h, op_first, op_second, g.m, g.n, g.k, &alpha, b16.get(), CUDA_R_16BF, g.ld_first, g.stride_first, a16.get(),
          CUDA_R_16BF, g.ld_second, g.stride_second, &beta, C, CUDA_R_32F, g.ldc, g.stride_c, g.batch,
          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      if (st != CUBLAS_STATUS_SUCCESS) throw_cublas_error(op, "cublasGemmStridedBatchedEx_64 (bf16 operands)", st);
      return;
    }
  }
  const cublasStatus_t st = gemm_call(h, op_first, op_second, g.m, g.n, g.k, &alpha, B, g.ld_first, g.stride_first, A,
                                      g.ld_second, g.stride_second, &beta, C, g.ldc, g.stride_c, g.batch);
  if (st != CUBLAS_STATUS_SUCCESS)
    throw_cublas_error(op, std::is_same_v<T, float> ? "cublasSgemmStridedBatched_64" : "cublasDgemmStridedBatched_64",
                       st);
}

template void gemm<float>(CudaBackend&, const char*, bool, bool, int64_t, int64_t, int64_t, float, const float*,
                          int64_t, int64_t, const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
template void gemm<double>(CudaBackend&, const char*, bool, bool, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, int64_t, const double*, int64_t, int64_t, double, double*, int64_t, int64_t,
                           int64_t);

}  // namespace cuda

void CudaBackend::bmm(const Tensor& a_in, const Tensor& b_in, Tensor& out, double beta) {
  SAGAN_CHECK(a_in.dim() == 3 && b_in.dim() == 3 && out.dim() == 3, "bmm: expected 3-d operands, got {} @ {} -> {}",
              shape_str(a_in.shape()), shape_str(b_in.shape()), shape_str(out.shape()));
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a_in.size(2);
  SAGAN_CHECK((a_in.size(0) == B || a_in.size(0) == 1) && (b_in.size(0) == B || b_in.size(0) == 1) &&
                  a_in.size(1) == M && b_in.size(1) == K && b_in.size(2) == N,
              "bmm: shapes {} @ {} do not give {}", shape_str(a_in.shape()), shape_str(b_in.shape()),
              shape_str(out.shape()));
  SAGAN_CHECK(a_in.dtype() == out.dtype() && b_in.dtype() == out.dtype(), "bmm: dtypes {} @ {} -> {} differ",
              dtype_name(a_in.dtype()), dtype_name(b_in.dtype()), dtype_name(out.dtype()));
  SAGAN_CHECK(out.is_contiguous(), "bmm: output of shape {} must be contiguous", shape_str(out.shape()));
  // Operands cuBLAS cannot read in place (e.g. both inner strides > 1) are
  // copied to a dense temporary first.
  auto dense = [&](const Tensor& t) {
    if (cuda::gemm_operand(t).ok) return t;
    Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
    copy(t, c);
    return c;
  };
  const Tensor a = dense(a_in), b = dense(b_in);
  const cuda::GemmOperand oa = cuda::gemm_operand(a), ob = cuda::gemm_operand(b);
  dispatch_float(out.dtype(), "bmm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cuda::gemm<T>(*this, "bmm", oa.trans, ob.trans, M, N, K, T(1), static_cast<const T*>(a.raw_data()), oa.ld,
                  oa.batch_stride, static_cast<const T*>(b.raw_data()), ob.ld, ob.batch_stride, static_cast<T>(beta),
                  static_cast<T*>(out.raw_data()), N, M * N, B);
  });
}

}  // namespace sagan
