// sagan_cuda_tests: the CUDA parity suite. Without a CUDA device it runs
// nothing, says so, and exits 77, which CTest reports as Skipped
// (SKIP_RETURN_CODE), so CPU-only machines show the suite as not run rather
// than passed. New device tensors are filled with NaN bytes
// (set_cuda_fill_allocations) in every test.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "sagan/core/backend.h"
#include "sagan/kernels/cuda/cublas_api.h"
#include "sagan/kernels/cuda/device_info.h"
#include "sagan/kernels/cuda/settings.h"

int main(int argc, char** argv) {
  const int devices = sagan::cuda_device_count();
  if (devices == 0) {
    const size_t n = Catch::getRegistryHub().getTestCaseRegistry().getAllTests().size();
    std::printf("SKIPPED: no CUDA device present (%zu tests not run)\n", n);
    return 77;
  }
  // Every new tensor's memory filled with NaN bytes: an element a kernel
  // fails to write cannot pass a comparison, whatever block it landed in.
  sagan::set_cuda_fill_allocations(true);
  try {  // creates cuda:0's backend, which loads cuBLAS
    std::printf("sagan_cuda_tests: %d CUDA device(s); cuda:0 is %s; cuBLAS from %s\n", devices,
                sagan::cuda_device_description(0).c_str(), sagan::cuda::cublas_loaded_path().c_str());
  } catch (const std::exception& e) {
    std::printf("sagan_cuda_tests: cannot start the CUDA backend: %s\n", e.what());
    return 1;
  }
  return Catch::Session().run(argc, argv);
}
