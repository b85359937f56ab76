// Tensor-core attention forward: the CUDA entry point over the kernels in
// flash_attention_tc_fwd.cuh.
#include "sagan/kernels/cuda/flash_attention_tc.h"
#include "sagan/kernels/cuda/flash_attention_tc_fwd.cuh"
#include "sagan/kernels/cuda/fused_launch.cuh"

namespace sagan::fused {

bool flash_attention_tc_supported(int d, int dv) { return d >= 1 && d <= tc::kMaxD && dv >= 1; }

cudaError_t flash_attention_tc_forward(const float* q, const float* k, const float* v, float* out, float* lse, int B,
                                       int N, int S, int d, int dv, TcPrecision precision, cudaStream_t stream) {
  CudaLauncher launcher(stream);
  if (tc::forward(launcher, q, k, v, out, lse, tc::Shape{B, N, S, d, dv}, static_cast<TcPrec>(precision)) != Status::Ok)
    return cudaErrorInvalidValue;
  return launcher.error();
}

}  // namespace sagan::fused
