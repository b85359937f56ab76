// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::bmm(const Tensor&, const Tensor&, Tensor&, double) {
  SAGAN_FAIL("bmm: not implemented on the cpu backend yet");
}

}  // namespace sagan
