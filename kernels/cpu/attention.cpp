// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::attention_forward(const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor*) {
  SAGAN_FAIL("attention_forward: not implemented on the cpu backend yet");
}

void CpuBackend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&) {
  SAGAN_FAIL("attention_backward: not implemented on the cpu backend yet");
}

}  // namespace sagan
