// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::batch_norm_stats(const Tensor&, Tensor&, Tensor&, double) {
  SAGAN_FAIL("batch_norm_stats: not implemented on the cpu backend yet");
}

void CpuBackend::batch_norm_normalize(const Tensor&, const Tensor&, const Tensor&, Tensor&) {
  SAGAN_FAIL("batch_norm_normalize: not implemented on the cpu backend yet");
}

void CpuBackend::batch_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, Tensor&) {
  SAGAN_FAIL("batch_norm_backward: not implemented on the cpu backend yet");
}

}  // namespace sagan
