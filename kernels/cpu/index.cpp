// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::index_select(const Tensor&, const Tensor&, Tensor&) {
  SAGAN_FAIL("index_select: not implemented on the cpu backend yet");
}

void CpuBackend::index_add(const Tensor&, const Tensor&, Tensor&) {
  SAGAN_FAIL("index_add: not implemented on the cpu backend yet");
}

}  // namespace sagan
