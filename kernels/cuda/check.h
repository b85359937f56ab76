// Every CUDA, cuBLAS and cuDNN call is checked; a failure throws sagan::Error
// naming the op that made the call, the call itself and the library's error
// string, e.g. "bmm: cublasSgemmStridedBatched_64(...) failed: ...".
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "sagan/core/error.h"

namespace sagan::cuda {

[[noreturn]] void throw_cuda_error(const char* op, const char* call, cudaError_t err);
[[noreturn]] void throw_cublas_error(const char* op, const char* call, cublasStatus_t st);
[[noreturn]] void throw_cudnn_error(const char* op, const char* call, cudnnStatus_t st);

// After a kernel launch: reports launch errors (bad configuration, no kernel
// image for this GPU). With SAGAN_CUDA_SYNC=1 in the environment it also
// synchronises the stream, so that an asynchronous fault is reported by the
// op that caused it rather than by a later call.
void check_launch(const char* op, const char* kernel, cudaStream_t stream);
// SAGAN_CUDA_SYNC set (and not 0): wait after every launch.
bool sync_after_launch();

}  // namespace sagan::cuda

#define SAGAN_CUDA_CHECK(op, call)                                                         \
  do {                                                                                     \
    cudaError_t sagan_err_ = (call);                                                       \
    if (sagan_err_ != cudaSuccess) ::sagan::cuda::throw_cuda_error(op, #call, sagan_err_); \
  } while (0)

#define SAGAN_CUBLAS_CHECK(op, call)                                                                 \
  do {                                                                                               \
    cublasStatus_t sagan_st_ = (call);                                                               \
    if (sagan_st_ != CUBLAS_STATUS_SUCCESS) ::sagan::cuda::throw_cublas_error(op, #call, sagan_st_); \
  } while (0)

#define SAGAN_CUDNN_CHECK(op, call)                                                                \
  do {                                                                                             \
    cudnnStatus_t sagan_st_ = (call);                                                              \
    if (sagan_st_ != CUDNN_STATUS_SUCCESS) ::sagan::cuda::throw_cudnn_error(op, #call, sagan_st_); \
  } while (0)
