// The CPU backend's kernel table and its registration with core.
#include "sagan/kernels/cpu/cpu_backend.h"

#include "sagan/core/eigen.h"

namespace sagan {

CpuBackend::CpuBackend() : Backend(Device::cpu()) {
#define SAGAN_KERNEL(name, params, args) implement<KernelId::name, &CpuBackend::name>();
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL
  // Eigen's own GEMM threads choose their blocking (and so the order of each
  // sum) by the thread count. The kernels thread over pieces fixed by the
  // shapes instead (image_chunks.h, gemm.cpp), each GEMM on one thread, so
  // results are the same bits for any OMP_NUM_THREADS. Eigen has one
  // process-wide setting (docs/architecture.md).
  Eigen::setNbThreads(1);
}

CpuBackend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace sagan

// Registration, at static initialisation. Nothing else refers to this file,
// so a linker pulling objects out of libsagan.a would drop it: the engine's
// CMake target makes every consumer link with -Wl,--undefined=sagan_cpu_backend,
// which keeps this definition (and with it the registration). Core calls
// sagan_register_cpu_backend (a weak reference, core/backend.cpp) when a
// program's own static initialiser uses the CPU before this one has run.
extern "C" {
void sagan_register_cpu_backend() {
  static const bool once = [] {
    sagan::register_backend(
        {sagan::DeviceType::CPU, [] { return 1; },
         [](int index) -> sagan::Backend& {
           // There is one CPU device. Another index used to allocate, then
           // fail the first kernel with "is on cpu, the kernel runs on cpu".
           SAGAN_CHECK(index == 0, "device cpu:{}: there is one CPU device, cpu (index 0)", index);
           return sagan::cpu_backend();
         }});
    return true;
  }();
  (void)once;
}
extern const bool sagan_cpu_backend;
const bool sagan_cpu_backend = (sagan_register_cpu_backend(), true);
}
