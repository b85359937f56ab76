// Fused attention forward: the CUDA entry point over the kernels in
// flash_attention_fwd_kernels.cuh.
#include "sagan/kernels/cuda/flash_attention.h"
#include "sagan/kernels/cuda/flash_attention_fwd_kernels.cuh"
#include "sagan/kernels/cuda/fused_launch.cuh"

namespace sagan::fused {

bool flash_attention_supported(int d, int dv) { return d >= 1 && d <= fa::kMaxD && dv >= 1; }

cudaError_t flash_attention_forward_f32(const float* q, const float* k, const float* v, float* out, float* lse, int B,
                                        int N, int S, int d, int dv, cudaStream_t stream, FlashForwardVariant variant) {
  CudaLauncher launcher(stream);
  const fa::FwdVariant var = variant == FlashForwardVariant::RowWarp      ? fa::FwdVariant::RowWarp
                             : variant == FlashForwardVariant::TiledAsync ? fa::FwdVariant::TiledAsync
                                                                          : fa::FwdVariant::Tiled;
  if (fa::forward(launcher, q, k, v, out, lse, fa::Shape{B, N, S, d, dv}, var) != Status::Ok)
    return cudaErrorInvalidValue;
  return launcher.error();
}

}  // namespace sagan::fused
