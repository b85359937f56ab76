// sagan_device_info: what a device run needs to know before anything else,
// printed as "key: value" lines: the CUDA runtime this program was built with
// and the driver's CUDA version; cuBLAS and cuDNN as compiled against (the
// headers) and as loaded (the libraries the loader found); every GPU with its
// compute capability, multiprocessors, memory, L2 and clocks; then a cuBLAS
// and a cuDNN handle created on cuda:0, which loads cuDNN's sub-libraries.
// Linked with the static CUDA runtime and shared cuBLAS and cuDNN, so that a
// loader or symbol problem shows here first (the engine links cuDNN the same
// way and opens cuBLAS by the same soname with dlopen, kernels/cuda/
// cublas_api.h; sagan_cuda_tests prints the file it opened).
// Exit status: 0 all fine; 77 no GPU (the versions are still printed);
// 1 a library call failed or the loaded cuDNN has another major version than
// the one compiled against (run_device.sh reports it and runs the steps
// anyway: a rebuild there would link the same wheel).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>

namespace {

int failures = 0;

void version_line(const char* key, int v) {
  // CUDA's encoding: 1000 * major + 10 * minor.
  std::printf("%s: %d.%d\n", key, v / 1000, (v % 1000) / 10);
}

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("error: %s: %s (%s)\n", what, cudaGetErrorString(e), cudaGetErrorName(e));
  ++failures;
  return false;
}

void print_device(int i) {
  cudaDeviceProp p{};
  if (!cuda_ok(cudaGetDeviceProperties(&p, i), "cudaGetDeviceProperties")) return;
  int sm_khz = 0, mem_khz = 0, bus = 0;
  cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, i);
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, i);
  cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, i);
  std::printf(
      "gpu %d: %s, sm_%d%d, %d SMs, %.1f GiB, L2 %.1f MiB, %zu KiB shared memory per block (opt-in), "
      "max SM clock %.0f MHz, memory clock %.0f MHz, bus %d bits\n",
      i, p.name, p.major, p.minor, p.multiProcessorCount, double(p.totalGlobalMem) / (1 << 30),
      double(p.l2CacheSize) / (1 << 20), p.sharedMemPerBlockOptin / 1024, sm_khz / 1e3, mem_khz / 1e3, bus);
}

}  // namespace

int main() {
  int runtime = 0, driver = 0;
  version_line("cuda runtime (static, built with)", CUDART_VERSION);
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) version_line("cuda runtime (loaded)", runtime);
  if (cudaDriverGetVersion(&driver) == cudaSuccess) version_line("cuda driver supports", driver);

  int cublas_v[3] = {0, 0, 0};
  cublasGetProperty(MAJOR_VERSION, &cublas_v[0]);
  cublasGetProperty(MINOR_VERSION, &cublas_v[1]);
  cublasGetProperty(PATCH_LEVEL, &cublas_v[2]);
  std::printf("cublas compiled: %d.%d.%d\n", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
  std::printf("cublas loaded: %d.%d.%d\n", cublas_v[0], cublas_v[1], cublas_v[2]);

  // cuDNN 9 encodes its version as 10000 * major + 100 * minor + patch.
  const size_t loaded = cudnnGetVersion();
  std::printf("cudnn compiled: %d.%d.%d\n", CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
  std::printf("cudnn loaded: %zu.%zu.%zu (cudart %zu)\n", loaded / 10000, loaded / 100 % 100, loaded % 100,
              cudnnGetCudartVersion());
  if (loaded / 10000 != size_t(CUDNN_MAJOR)) {
    std::printf("error: cuDNN major version mismatch: compiled against %d, loaded %zu\n", CUDNN_MAJOR, loaded / 10000);
    ++failures;
  } else if (loaded < size_t(CUDNN_VERSION)) {
    std::printf(
        "warning: the loaded cuDNN is older than the headers compiled against (%d); an entry point added "
        "since would fail at its first call\n",
        CUDNN_VERSION);
  }

  int n = 0;
  const cudaError_t count = cudaGetDeviceCount(&n);
  if (count != cudaSuccess || n == 0) {
    std::printf("gpus: 0 (%s)\n", count == cudaSuccess ? "none present" : cudaGetErrorString(count));
    return failures ? 1 : 77;
  }
  std::printf("gpus: %d\n", n);
  for (int i = 0; i < n; ++i) print_device(i);

  if (cuda_ok(cudaSetDevice(0), "cudaSetDevice(0)")) {
    cublasHandle_t blas = nullptr;
    const cublasStatus_t bs = cublasCreate(&blas);
    std::printf("cublasCreate: %s\n", cublasGetStatusString(bs));
    if (bs == CUBLAS_STATUS_SUCCESS)
      cublasDestroy(blas);
    else
      ++failures;
    cudnnHandle_t dnn = nullptr;
    const cudnnStatus_t ds = cudnnCreate(&dnn);
    std::printf("cudnnCreate: %s\n", cudnnGetErrorString(ds));
    if (ds == CUDNN_STATUS_SUCCESS)
      cudnnDestroy(dnn);
    else
      ++failures;
  }
  return failures ? 1 : 0;
}
