// Fused attention backward: the CUDA entry point over the kernels in
// flash_attention_bwd_kernels.cuh (D = rowsum(dO * O), then dV, then dK and dQ;
// deterministic or with dQ by atomics).
#include "sagan/kernels/cuda/flash_attention.h"
#include "sagan/kernels/cuda/flash_attention_bwd_kernels.cuh"
#include "sagan/kernels/cuda/fused_launch.cuh"

namespace sagan::fused {

size_t flash_attention_backward_workspace_bytes(int B, int N, int S, int d, int dv) {
  return fa::backward_workspace_bytes(fa::Shape{B, N, S, d, dv});
}

cudaError_t flash_attention_backward_f32(const float* q, const float* k, const float* v, const float* out,
                                         const float* lse, const float* gout, float* gq, float* gk, float* gv, int B,
                                         int N, int S, int d, int dv, void* workspace, size_t workspace_bytes,
                                         cudaStream_t stream, bool deterministic) {
  CudaLauncher launcher(stream);
  if (fa::backward(launcher, q, k, v, out, lse, gout, gq, gk, gv, fa::Shape{B, N, S, d, dv}, workspace,
                   workspace_bytes, deterministic) != Status::Ok)
    return cudaErrorInvalidValue;
  return launcher.error();
}

}  // namespace sagan::fused
