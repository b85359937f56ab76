// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::conv2d(const Tensor&, const Tensor&, const std::optional<Tensor>&, Tensor&, Conv2dGeom) {
  SAGAN_FAIL("conv2d: not implemented on the cpu backend yet");
}

void CpuBackend::conv2d_backward_input(const Tensor&, const Tensor&, Tensor&, Conv2dGeom) {
  SAGAN_FAIL("conv2d_backward_input: not implemented on the cpu backend yet");
}

void CpuBackend::conv2d_backward_weight(const Tensor&, const Tensor&, Tensor&, Conv2dGeom) {
  SAGAN_FAIL("conv2d_backward_weight: not implemented on the cpu backend yet");
}

}  // namespace sagan
