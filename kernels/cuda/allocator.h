// A caching device allocator. Freed blocks go to a free list keyed by their
// rounded size instead of back to the driver, so a training step, which
// allocates the same sizes in the same order every time, makes no cudaMalloc
// (and no implicit synchronisation) after the first step.
//
// Blocks are used only on the owning device's single stream, so a freed block
// can be handed out again at once: any later use is queued behind the kernels
// that used it before.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/device_info.h"

namespace sagan::cuda {

class CachingAllocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Never returns null for nbytes > 0. On cudaErrorMemoryAllocation the cache
  // is emptied and the call retried once; then it throws naming the bytes
  // requested and the bytes the device has free.
  void* allocate(size_t nbytes);
  // p must come from allocate(); it goes back to its free list.
  void free(void* p);
  // cudaFree of every cached block (after the device is idle).
  void empty_cache();
  CudaMemoryStats stats() const;

  // The size class of a request: multiples of 512 bytes up to 1 MiB, then 8
  // classes per power of two (at most 12.5% slack).
  static size_t round_size(size_t nbytes);

 private:
  void release_cached_locked();

  int device_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> live_;     // block -> size class
  std::map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  CudaMemoryStats stats_;
};

}  // namespace sagan::cuda
