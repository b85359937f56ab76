// Row-major batched GEMM over cuBLAS, for bmm and the attention kernels.
#pragma once
#include <cstdint>

namespace sagan {
class CudaBackend;
}

namespace sagan::cuda {

// For b in [0, batch): C[b] (M,N) = alpha * op(A[b]) @ op(B[b]) + beta * C[b],
// everything row-major. A is stored (M,K) with row stride lda, or (K,M) when
// trans_a; B is stored (K,N), or (N,K) when trans_b; C has row stride ldc.
// A stride of 0 between batches broadcasts an operand. beta == 0 never reads
// C (it may hold NaN). float32 may use TF32 when set_cuda_tf32(true).
template <class T>
void gemm(CudaBackend& be, const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
          const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
          int64_t ldc, int64_t stride_c, int64_t batch);

}  // namespace sagan::cuda
