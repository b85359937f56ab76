// The CUDA source of the caching allocator (allocator.h) and the backend's
// allocate/free.
#include "sagan/kernels/cuda/allocator.h"

#include "sagan/kernels/cuda/cuda_backend.h"

namespace sagan::cuda {

void* CudaMemorySource::allocate(size_t bytes, bool in_capture) {
  DeviceGuard guard(device_);
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  if (in_capture) SAGAN_CUDA_CHECK("allocate", cudaThreadExchangeStreamCaptureMode(&mode));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (in_capture) {
    const cudaError_t back = cudaThreadExchangeStreamCaptureMode(&mode);
    if (back != cudaSuccess && err == cudaSuccess) (void)cudaFree(p);  // not leaked by the throw below
    SAGAN_CUDA_CHECK("allocate", back);
  }
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // else the next launch check reports it as its own
    return nullptr;
  }
  if (err != cudaSuccess) throw_cuda_error("allocate", "cudaMalloc", err);
  return p;
}

void CudaMemorySource::release(void* p) {
  DeviceGuard guard(device_);
  SAGAN_CUDA_CHECK("empty_cache", cudaFree(p));
}

void CudaMemorySource::synchronize() {
  DeviceGuard guard(device_);
  SAGAN_CUDA_CHECK("empty_cache", cudaDeviceSynchronize());
}

std::string CudaMemorySource::out_of_memory(size_t nbytes, size_t size, int64_t bytes_in_use) {
  DeviceGuard guard(device_);
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
  return fmt::format(
      "cuda:{}: out of memory allocating {} bytes ({} bytes after rounding); the device has {} bytes "
      "free of {}, {} bytes are in use by tensors and workspaces",
      device_, nbytes, size, free_b, total_b, bytes_in_use);
}

std::string CudaMemorySource::name() const { return "cuda:" + std::to_string(device_); }

}  // namespace sagan::cuda

namespace sagan {

void* CudaBackend::allocate(size_t nbytes) {
  void* p = allocator_.allocate(nbytes);
  if (p && cuda_fill_allocations()) {
    cuda::DeviceGuard guard(index_);
    SAGAN_CUDA_CHECK("allocate (SAGAN_CUDA_FILL_ALLOCATIONS)", cudaMemsetAsync(p, 0xff, nbytes, stream_));
  }
  return p;
}

void CudaBackend::deallocate(void* ptr, size_t) { allocator_.free(ptr); }

CudaMemoryStats cuda_memory_stats(int device) { return cuda::backend(device).allocator().stats(); }

void cuda_empty_cache(int device) { cuda::backend(device).allocator().empty_cache(); }

}  // namespace sagan
