// Batched spectral-norm power iteration: the CUDA entry point over the
// kernels in sn_power_batched_kernels.cuh (Columns) and
// sn_power_rowchunk_kernels.cuh (RowChunks).
#include <vector>

#include "sagan/kernels/cuda/fused_launch.cuh"
#include "sagan/kernels/cuda/sn_power_batched.h"
#include "sagan/kernels/cuda/sn_power_batched_kernels.cuh"
#include "sagan/kernels/cuda/sn_power_rowchunk_kernels.cuh"

namespace sagan::fused {

namespace {
std::vector<SnMatIn> to_internal(const SnMatrixF32* mats, int count) {
  std::vector<SnMatIn> in(count > 0 && mats ? count : 0);
  for (size_t i = 0; i < in.size(); ++i) in[i] = {mats[i].w, mats[i].u, mats[i].v, mats[i].rows, mats[i].cols};
  return in;
}
}  // namespace

size_t sn_power_iteration_batched_workspace_bytes(const SnMatrixF32* mats, int count, SnPowerVariant variant) {
  if (count < 0 || (count > 0 && mats == nullptr)) return 0;
  if (variant == SnPowerVariant::RowChunks)
    return snr::workspace_bytes(to_internal(mats, count).data(), count);
  return sn::workspace_bytes(to_internal(mats, count).data(), count);
}

cudaError_t sn_power_iteration_batched_f32(const SnMatrixF32* mats, int count, float eps, float* sigma, void* workspace,
                                           size_t workspace_bytes, cudaStream_t stream, SnPowerVariant variant) {
  if (count < 0 || (count > 0 && mats == nullptr)) return cudaErrorInvalidValue;
  CudaLauncher launcher(stream);
  const Status st = variant == SnPowerVariant::RowChunks
                        ? snr::power_iteration(launcher, to_internal(mats, count).data(), count, eps, sigma,
                                               workspace, workspace_bytes)
                        : sn::power_iteration(launcher, to_internal(mats, count).data(), count, eps, sigma,
                                              workspace, workspace_bytes);
  if (st != Status::Ok) return cudaErrorInvalidValue;
  return launcher.error();
}

}  // namespace sagan::fused
