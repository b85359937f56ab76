// Batched spectral-norm power iteration: the CUDA entry point over the
// kernels in sn_power_batched_kernels.cuh.
#include <vector>

#include "kernels/cuda/fused_launch.cuh"
#include "kernels/cuda/sn_power_batched.h"
#include "kernels/cuda/sn_power_batched_kernels.cuh"

namespace sagan::fused {

namespace {
std::vector<sn::MatIn> to_internal(const SnMatrixF32* mats, int count) {
  std::vector<sn::MatIn> in(count > 0 && mats ? count : 0);
  for (size_t i = 0; i < in.size(); ++i) in[i] = {mats[i].w, mats[i].u, mats[i].v, mats[i].rows, mats[i].cols};
  return in;
}
}  // namespace

size_t sn_power_iteration_batched_workspace_bytes(const SnMatrixF32* mats, int count) {
  if (count < 0 || (count > 0 && mats == nullptr)) return 0;
  const std::vector<sn::MatIn> in = to_internal(mats, count);
  return sn::workspace_bytes(in.data(), count);
}

cudaError_t sn_power_iteration_batched_f32(const SnMatrixF32* mats, int count, float eps, float* sigma, void* workspace,
                                           size_t workspace_bytes, cudaStream_t stream) {
  if (count < 0 || (count > 0 && mats == nullptr)) return cudaErrorInvalidValue;
  const std::vector<sn::MatIn> in = to_internal(mats, count);
  CudaLauncher launcher(stream);
  if (sn::power_iteration(launcher, in.data(), count, eps, sigma, workspace, workspace_bytes) != Status::Ok)
    return cudaErrorInvalidValue;
  return launcher.error();
}

}  // namespace sagan::fused
