// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::power_iteration(const std::vector<Tensor>&, std::vector<Tensor>&, std::vector<Tensor>&, double) {
  SAGAN_FAIL("power_iteration: not implemented on the cpu backend yet");
}

}  // namespace sagan
