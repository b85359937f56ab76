// The loader of kernels/cuda/cublas_api.h.
#include "sagan/kernels/cuda/cublas_api.h"

#include <dlfcn.h>

#include <string>

#include "sagan/core/error.h"

// Expands a macro argument before turning it into text: the table's names
// are the header's macros (cublasCreate), the exported symbols what they
// expand to (cublasCreate_v2).
#define SAGAN_CUBLAS_TEXT(x) SAGAN_CUBLAS_TEXT_(x)
#define SAGAN_CUBLAS_TEXT_(x) #x

namespace sagan::cuda {

namespace {

std::string dl_error() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown error";
}

CublasApi load() {
  const std::string name = cublas_library_name();
  std::string tried = name;
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string why = lib ? "" : dl_error();
#ifdef SAGAN_CUBLAS_BUILD_DIR
  if (lib == nullptr) {
    const std::string path = std::string(SAGAN_CUBLAS_BUILD_DIR) + "/" + name;
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      tried += ", then " + path;
      why += "; " + dl_error();
    }
  }
#endif
  if (lib == nullptr)
    SAGAN_FAIL(
        "cuda: cannot load cuBLAS ({}: {}); the CUDA backend needs the CUDA Toolkit's cuBLAS {}: install it or put "
        "the folder that holds {} on LD_LIBRARY_PATH",
        tried, why, CUBLAS_VER_MAJOR, name);
  // Never closed: the table lives as long as the process.
  CublasApi api;
#define SAGAN_CUBLAS_LOAD(entry)                                                                    \
  api.entry = reinterpret_cast<decltype(api.entry)>(dlsym(lib, SAGAN_CUBLAS_TEXT(entry)));          \
  if (api.entry == nullptr)                                                                         \
    SAGAN_FAIL("cuda: {} has no function {} ({}); the engine was built against cuBLAS {}.{}", name, \
               SAGAN_CUBLAS_TEXT(entry), dl_error(), CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR);
  SAGAN_CUBLAS_FUNCTIONS(SAGAN_CUBLAS_LOAD)
#undef SAGAN_CUBLAS_LOAD
  return api;
}

}  // namespace

const char* cublas_library_name() {
  static const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  return name.c_str();
}

const CublasApi& cublas_api() {
  static const CublasApi api = load();
  return api;
}

std::string cublas_loaded_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(cublas_api().cublasCreate), &info) == 0 || info.dli_fname == nullptr)
    return cublas_library_name();
  return info.dli_fname;
}

}  // namespace sagan::cuda
