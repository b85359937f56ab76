// cuBLAS is opened on first use, not linked (kernels/cuda/cublas_api.h): a
// process that never creates a CUDA backend does not load it, and the table
// resolves every function the engine calls from the library the headers
// name. Needs no GPU: dlopen and dlsym work without one.
#include <catch2/catch.hpp>

#ifdef SAGAN_WITH_CUDA
#include <fstream>
#include <string>

#include "sagan/core/backend.h"
#include "sagan/kernels/cuda/cublas_api.h"

namespace {
bool cublas_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find("libcublas") != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("cuBLAS is loaded on first use and resolves every function the engine calls", "[cublas_loading]") {
  // ctest runs each test case in a process of its own, so nothing before
  // this line can have loaded it; with a GPU another test case run in the
  // same process may have, which is why the first check needs no GPU.
  if (sagan::cuda_device_count() == 0) CHECK_FALSE(cublas_mapped());
  CHECK(std::string(sagan::cuda::cublas_library_name()) == "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR));
  const sagan::cuda::CublasApi& api = sagan::cuda::cublas_api();
  CHECK(cublas_mapped());
#define SAGAN_CHECK_ENTRY(name) CHECK(api.name != nullptr);
  SAGAN_CUBLAS_FUNCTIONS(SAGAN_CHECK_ENTRY)
#undef SAGAN_CHECK_ENTRY
  // The functions are callable without a device.
  CHECK(std::string(api.cublasGetStatusName(CUBLAS_STATUS_NOT_INITIALIZED)) == "CUBLAS_STATUS_NOT_INITIALIZED");
  CHECK(&sagan::cuda::cublas_api() == &api);  // loaded once
  CHECK(sagan::cuda::cublas_loaded_path().find(sagan::cuda::cublas_library_name()) != std::string::npos);
}
#endif
