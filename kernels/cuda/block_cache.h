// The bookkeeping of the CUDA caching allocator (allocator.h): size classes,
// free lists, the private pools of graph captures and the statistics, over
// a source of raw device memory. Plain C++, compiled in every build, so that
// tests/test_device_block_cache.cpp runs all of it on the CPU with a
// stand-in for cudaMalloc; allocator.cu supplies the CUDA source.
//
// Freed blocks go to a free list keyed by their rounded size instead of back
// to the source, so a training step, which allocates the same sizes in the
// same order every time, makes no cudaMalloc (and no implicit
// synchronisation) after the first step.
//
// A CUDA graph replays its kernels on the addresses they had at capture,
// long after the tensors there were freed. So while a graph is captured
// every allocation of the capturing thread comes from a private pool (its
// own free lists, fresh memory otherwise), and a freed pool block goes back
// to that pool only, as does a common block the capturing thread frees
// during the capture (the captured work may have used it; a block of an
// earlier graph's released pool counts as common): nothing outside the
// graph can take memory the graph still uses. When the graph is destroyed
// its pool's blocks join the common cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sagan/kernels/cuda/device_info.h"

namespace sagan::cuda {

// Where the cache gets memory, and what it needs of the device.
class DeviceMemorySource {
 public:
  virtual ~DeviceMemorySource() = default;
  // `bytes` of new memory, or null when the device has no more (other
  // failures throw). in_capture: the calling thread is capturing a graph.
  virtual void* allocate(size_t bytes, bool in_capture) = 0;
  virtual void release(void* p) = 0;
  // Waits until no queued work can still use cached memory.
  virtual void synchronize() = 0;
  // The message for a request of nbytes (size after rounding) that found
  // no memory even with the cache emptied (the cache throws it).
  virtual std::string out_of_memory(size_t nbytes, size_t size, int64_t bytes_in_use) = 0;
  virtual std::string name() const = 0;  // "cuda:0", for messages
};

class DeviceBlockCache {
 public:
  explicit DeviceBlockCache(DeviceMemorySource& source) : source_(source) {}
  DeviceBlockCache(const DeviceBlockCache&) = delete;
  DeviceBlockCache& operator=(const DeviceBlockCache&) = delete;

  // Null for 0 bytes, else never null. When the source has no memory the
  // cache is emptied and the request retried once (not during a capture:
  // emptying synchronises); then it throws the source's out_of_memory
  // message. A request over kLimit throws at once.
  void* allocate(size_t nbytes);
  // p must come from allocate(); it goes back to its free list.
  void free(void* p);
  // Every cached block of the common cache back to the source (after the
  // device is idle); a graph's pool keeps its blocks.
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
  // Requests beyond any device fail without asking the source; the limit
  // also keeps round_size clear of overflow.
  static constexpr size_t kLimit = size_t(1) << 60;

 private:
  using FreeLists = std::map<size_t, std::vector<void*>>;  // size class -> cached blocks
  struct Live {
    size_t size;
    int pool;  // 0: the common cache
  };
  void release_cached_locked();
  void* source_allocate_locked(size_t size, size_t nbytes, bool in_capture);

  DeviceMemorySource& source_;
  mutable std::mutex mu_;
  std::unordered_map<void*, Live> live_;
  FreeLists free_;
  std::map<int, FreeLists> pools_;  // graph pools by id
  int active_pool_ = 0, next_pool_ = 1;
  std::thread::id pool_thread_;  // the capturing thread, while active_pool_ != 0
  CudaMemoryStats stats_;
};

}  // namespace sagan::cuda
