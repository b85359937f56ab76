// For the tests that call the fused kernels' plain-pointer APIs directly
// (test_flash_attention.cpp, test_sn_batched.cpp) rather than through the
// engine: a skip guard and a CUDA status assertion.
#pragma once
#include <cuda_runtime.h>

#include <catch2/catch.hpp>

namespace sagan::cudatest {

inline bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

}  // namespace sagan::cudatest

// main() already skips the whole binary without a device; this keeps a test
// safe when run on its own through another runner.
#define SKIP_WITHOUT_GPU()                            \
  do {                                                \
    if (!::sagan::cudatest::have_gpu()) {             \
      WARN("no CUDA device: skipping this GPU test"); \
      return;                                         \
    }                                                 \
  } while (0)

#define CUDA_OK(call) REQUIRE((call) == cudaSuccess)
