// The CUDA caching allocator: the bookkeeping of block_cache.h (size
// classes, free lists, graph pools; tested on the CPU) over cudaMalloc.
//
// Blocks are used only on the owning device's single stream, so a freed block
// can be handed out again at once: any later use is queued behind the kernels
// that used it before. CudaBackend::capture makes the graph pools.
#pragma once
#include <cstddef>
#include <string>

#include "sagan/kernels/cuda/block_cache.h"

namespace sagan::cuda {

// cudaMalloc and cudaFree on one device.
class CudaMemorySource final : public DeviceMemorySource {
 public:
  explicit CudaMemorySource(int device) : device_(device) {}
  // Under stream capture cudaMalloc counts as unsafe (it may synchronise);
  // it is not queued on the stream, so the capture may go on around it.
  void* allocate(size_t bytes, bool in_capture) override;
  void release(void* p) override;
  void synchronize() override;
  // Names the bytes requested and the bytes the device has free.
  std::string out_of_memory(size_t nbytes, size_t size, int64_t bytes_in_use) override;
  std::string name() const override;

 private:
  int device_;
};

class CachingAllocator {
 public:
  explicit CachingAllocator(int device) : source_(device), cache_(source_) {}
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(size_t nbytes) { return cache_.allocate(nbytes); }
  void free(void* p) { cache_.free(p); }
  void empty_cache() { cache_.empty_cache(); }
  CudaMemoryStats stats() const { return cache_.stats(); }
  int begin_pool() { return cache_.begin_pool(); }
  void end_pool() { cache_.end_pool(); }
  void release_pool(int id) { cache_.release_pool(id); }

 private:
  CudaMemorySource source_;
  DeviceBlockCache cache_;  // after source_, which it uses
};

}  // namespace sagan::cuda
