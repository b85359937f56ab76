// The CUDA side of the Launcher interface that the fused kernels' dispatch
// code is written against (see flash_attention_common.cuh): launches on one
// stream, raises the dynamic shared-memory limit once per kernel and device
// where a kernel needs more than 48 KiB, and keeps the first error.
#pragma once
#include <cuda_runtime.h>

#include <mutex>
#include <utility>
#include <vector>

namespace sagan::fused {

class CudaLauncher {
 public:
  explicit CudaLauncher(cudaStream_t stream) : stream_(stream) {}

  cudaError_t error() const { return err_; }

  int num_sms() {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0)
      return 1;
    return n;
  }

  template <class... P, class... A>
  void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, A... args) {
    if (err_ != cudaSuccess) return;
    if (smem_bytes > 48 * 1024) {
      err_ = raise_smem_limit(reinterpret_cast<const void*>(kernel), smem_bytes);
      if (err_ != cudaSuccess) return;
    }
    kernel<<<grid, block, smem_bytes, stream_>>>(static_cast<P>(args)...);
    err_ = cudaGetLastError();
  }

  void zero(float* p, size_t n) {
    if (err_ == cudaSuccess && n > 0) err_ = cudaMemsetAsync(p, 0, n * sizeof(float), stream_);
  }

 private:
  static cudaError_t raise_smem_limit(const void* fn, size_t bytes) {
    static std::mutex mu;
    static std::vector<std::pair<std::pair<const void*, int>, size_t>> done;  // (kernel, device) -> bytes
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [key, b] : done)
      if (key.first == fn && key.second == dev && b >= bytes) return cudaSuccess;
    e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (e == cudaSuccess) done.push_back({{fn, dev}, bytes});
    return e;
  }

  cudaStream_t stream_;
  cudaError_t err_ = cudaSuccess;
};

}  // namespace sagan::fused
