// STUB: not implemented yet (placeholder so the backend links).
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

void CpuBackend::adam_update(std::vector<Tensor>&, const std::vector<Tensor>&, std::vector<Tensor>&, std::vector<Tensor>&, const AdamHyper&) {
  SAGAN_FAIL("adam_update: not implemented on the cpu backend yet");
}

void CpuBackend::ema_update(std::vector<Tensor>&, const std::vector<Tensor>&, double) {
  SAGAN_FAIL("ema_update: not implemented on the cpu backend yet");
}

}  // namespace sagan
