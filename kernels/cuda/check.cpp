// Error reporting for kernels/cuda/check.h.
#include "sagan/kernels/cuda/check.h"

#include <cstdlib>
#include <cstring>

#include "sagan/kernels/cuda/cublas_api.h"

namespace sagan::cuda {

void throw_cuda_error(const char* op, const char* call, cudaError_t err) {
  // Clear a non-sticky error so that the next, unrelated call does not
  // report it again.
  (void)cudaGetLastError();
  SAGAN_FAIL("{}: {} failed: {} ({})", op, call, cudaGetErrorString(err), cudaGetErrorName(err));
}

// The libraries' failures can leave a CUDA error of their own kernels
// behind; cleared for the same reason.
void throw_cublas_error(const char* op, const char* call, cublasStatus_t st) {
  (void)cudaGetLastError();
  SAGAN_FAIL("{}: {} failed: {} ({})", op, call, cublas_api().cublasGetStatusString(st),
             cublas_api().cublasGetStatusName(st));
}

void throw_cudnn_error(const char* op, const char* call, cudnnStatus_t st) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  (void)cudaGetLastError();
  SAGAN_FAIL("{}: {} failed: {}{}{}", op, call, cudnnGetErrorString(st), detail[0] ? ": " : "", detail);
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("SAGAN_CUDA_SYNC");
    return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
  }();
  return on;
}

void check_launch(const char* op, const char* kernel, cudaStream_t stream) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    SAGAN_FAIL("{}: launch of kernel {} failed: {} ({})", op, kernel, cudaGetErrorString(err), cudaGetErrorName(err));
  }
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  if (sync_after_launch() && cudaStreamIsCapturing(stream, &capturing) == cudaSuccess &&
      capturing == cudaStreamCaptureStatusNone) {  // a capture records, runs nothing: nothing to wait for
    err = cudaStreamSynchronize(stream);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      SAGAN_FAIL("{}: kernel {} failed while running: {} ({})", op, kernel, cudaGetErrorString(err),
                 cudaGetErrorName(err));
    }
  }
}

}  // namespace sagan::cuda
