// A caching device allocator. Freed blocks go to a free list keyed by their
// rounded size instead of back to the driver, so a training step, which
// allocates the same sizes in the same order every time, makes no cudaMalloc
// (and no implicit synchronisation) after the first step.
//
// Blocks are used only on the owning device's single stream, so a freed block
// can be handed out again at once: any later use is queued behind the kernels
// that used it before.
//
// A CUDA graph (CudaBackend::capture) replays its kernels on the addresses
// they had at capture, long after the tensors there were freed. So while a
// graph is captured every allocation comes from a private pool (its own
// free lists, fresh cudaMalloc blocks otherwise), and a freed pool block
// goes back to that pool only, as does a common block the capturing thread
// frees during the capture (the captured work may have used it): nothing
// outside the graph can take memory the graph still uses. When the graph is destroyed its pool's blocks join the
// common cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
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

  // This thread's allocations from now on come from a new pool, until
  // end_pool(); returns its id. One pool at a time (other threads keep the
  // common cache).
  int begin_pool();
  void end_pool();
  // The pool's graph is gone (after the device is idle): its free blocks,
  // and its live ones when they are freed, go to the common cache.
  void release_pool(int id);

  // The size class of a request: multiples of 512 bytes up to 1 MiB, then 8
  // classes per power of two (at most 12.5% slack).
  static size_t round_size(size_t nbytes);

 private:
  using FreeLists = std::map<size_t, std::vector<void*>>;  // size class -> cached blocks
  struct Live {
    size_t size;
    int pool;  // 0: the common cache
  };
  void release_cached_locked();
  void* cuda_malloc_locked(size_t size, size_t nbytes, bool in_capture);

  int device_;
  mutable std::mutex mu_;
  std::unordered_map<void*, Live> live_;
  FreeLists free_;
  std::map<int, FreeLists> pools_;  // graph pools by id
  int active_pool_ = 0, next_pool_ = 1;
  std::thread::id pool_thread_;  // the capturing thread, while active_pool_ != 0
  CudaMemoryStats stats_;
};

}  // namespace sagan::cuda
