// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::avg_pool2x2(const Tensor&, Tensor&) {
  SAGAN_FAIL("avg_pool2x2: not implemented on the cpu backend yet");
}

void CpuBackend::avg_pool2x2_backward(const Tensor&, Tensor&) {
  SAGAN_FAIL("avg_pool2x2_backward: not implemented on the cpu backend yet");
}

void CpuBackend::max_pool2x2(const Tensor&, Tensor&) {
  SAGAN_FAIL("max_pool2x2: not implemented on the cpu backend yet");
}

void CpuBackend::max_pool2x2_backward(const Tensor&, const Tensor&, Tensor&) {
  SAGAN_FAIL("max_pool2x2_backward: not implemented on the cpu backend yet");
}

void CpuBackend::upsample_nearest2x(const Tensor&, Tensor&) {
  SAGAN_FAIL("upsample_nearest2x: not implemented on the cpu backend yet");
}

void CpuBackend::upsample_nearest2x_backward(const Tensor&, Tensor&) {
  SAGAN_FAIL("upsample_nearest2x_backward: not implemented on the cpu backend yet");
}

}  // namespace sagan
