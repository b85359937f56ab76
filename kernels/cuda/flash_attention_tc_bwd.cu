// Tensor-core attention backward: the CUDA entry point over the kernels in
// flash_attention_tc_bwd.cuh (D, dV, dK with dQ partials, ordered sums).
#include "sagan/kernels/cuda/flash_attention_tc.h"
#include "sagan/kernels/cuda/flash_attention_tc_bwd.cuh"
#include "sagan/kernels/cuda/fused_launch.cuh"

namespace sagan::fused {

size_t flash_attention_tc_backward_workspace_bytes(int B, int N, int S, int d, int dv) {
  CudaLauncher launcher(nullptr);
  return tc::backward_workspace_bytes(tc::Shape{B, N, S, d, dv}, launcher.num_sms());
}

cudaError_t flash_attention_tc_backward(const float* q, const float* k, const float* v, const float* out,
                                        const float* lse, const float* gout, float* gq, float* gk, float* gv, int B,
                                        int N, int S, int d, int dv, TcPrecision precision, void* workspace,
                                        size_t workspace_bytes, cudaStream_t stream) {
  CudaLauncher launcher(stream);
  if (tc::backward(launcher, q, k, v, out, lse, gout, gq, gk, gv, tc::Shape{B, N, S, d, dv},
                   static_cast<TcPrec>(precision), workspace, workspace_bytes) != Status::Ok)
    return cudaErrorInvalidValue;
  return launcher.error();
}

}  // namespace sagan::fused
