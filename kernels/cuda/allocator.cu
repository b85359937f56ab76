// The caching allocator (see allocator.h) and the backend's allocate/free.
#include "kernels/cuda/allocator.h"

#include <algorithm>

#include "kernels/cuda/cuda_backend.h"

namespace sagan::cuda {

size_t CachingAllocator::round_size(size_t n) {
  constexpr size_t kSmall = size_t(1) << 20;
  if (n <= kSmall) return (n + 511) / 512 * 512;
  int top = 63 - __builtin_clzll(static_cast<unsigned long long>(n));  // 2^top <= n
  size_t step = size_t(1) << (top - 3);
  return (n + step - 1) / step * step;
}

namespace {
// Requests beyond any device fail without asking the driver; the limit also
// keeps round_size clear of overflow.
constexpr size_t kLimit = size_t(1) << 60;
}  // namespace

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  const size_t size = nbytes > kLimit ? nbytes : round_size(nbytes);
  const int pool = active_pool_ != 0 && std::this_thread::get_id() == pool_thread_ ? active_pool_ : 0;
  FreeLists& lists = pool != 0 ? pools_.at(pool) : free_;
  auto it = lists.find(size);
  if (it != lists.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    live_.emplace(p, Live{size, pool});
    ++stats_.cache_hits;
    stats_.bytes_cached -= static_cast<int64_t>(size);
    stats_.bytes_in_use += static_cast<int64_t>(size);
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    return p;
  }
  void* p = cuda_malloc_locked(size, nbytes, pool != 0);
  live_.emplace(p, Live{size, pool});
  stats_.bytes_in_use += static_cast<int64_t>(size);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return p;
}

void* CachingAllocator::cuda_malloc_locked(size_t size, size_t nbytes, bool in_capture) {
  DeviceGuard guard(device_);
  // Under stream capture cudaMalloc counts as unsafe (it may synchronise);
  // it is not queued on the stream, so the capture may go on around it.
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  if (in_capture) SAGAN_CUDA_CHECK("allocate", cudaThreadExchangeStreamCaptureMode(&mode));
  void* p = nullptr;
  cudaError_t err = nbytes > kLimit ? cudaErrorMemoryAllocation : cudaMalloc(&p, size);
  ++stats_.malloc_calls;
  if (err == cudaErrorMemoryAllocation && !in_capture) {  // emptying the cache would synchronise
    (void)cudaGetLastError();
    release_cached_locked();
    err = nbytes > kLimit ? cudaErrorMemoryAllocation : cudaMalloc(&p, size);
    ++stats_.malloc_calls;
  }
  if (in_capture) SAGAN_CUDA_CHECK("allocate", cudaThreadExchangeStreamCaptureMode(&mode));
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
    SAGAN_FAIL(
        "cuda:{}: out of memory allocating {} bytes ({} bytes after rounding); the device has {} bytes "
        "free of {}, {} bytes are in use by tensors and workspaces",
        device_, nbytes, size, free_b, total_b, stats_.bytes_in_use);
  }
  if (err != cudaSuccess) throw_cuda_error("allocate", "cudaMalloc", err);
  return p;
}

void CachingAllocator::free(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  SAGAN_CHECK(it != live_.end(), "cuda:{}: deallocate of a pointer this allocator did not hand out", device_);
  const Live block = it->second;
  live_.erase(it);
  // A common block freed by the capturing thread during a capture may have
  // been used by the captured work, whose replays keep using its address:
  // it joins the graph's pool (and the common cache again with the graph).
  int to = block.pool;
  if (to == 0 && active_pool_ != 0 && std::this_thread::get_id() == pool_thread_) to = active_pool_;
  auto pool = pools_.find(to);
  (to != 0 && pool != pools_.end() ? pool->second : free_)[block.size].push_back(p);
  stats_.bytes_in_use -= static_cast<int64_t>(block.size);
  stats_.bytes_cached += static_cast<int64_t>(block.size);
}

int CachingAllocator::begin_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  SAGAN_CHECK(active_pool_ == 0, "cuda:{}: a graph capture is already under way", device_);
  active_pool_ = next_pool_++;
  pool_thread_ = std::this_thread::get_id();
  pools_[active_pool_];
  return active_pool_;
}

void CachingAllocator::end_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  active_pool_ = 0;
}

void CachingAllocator::release_pool(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto pool = pools_.find(id);
  if (pool == pools_.end()) return;
  for (auto& [size, blocks] : pool->second) free_[size].insert(free_[size].end(), blocks.begin(), blocks.end());
  pools_.erase(pool);
  if (active_pool_ == id) active_pool_ = 0;
}

void CachingAllocator::release_cached_locked() {
  if (std::all_of(free_.begin(), free_.end(), [](const auto& kv) { return kv.second.empty(); })) return;
  DeviceGuard guard(device_);
  // Cached blocks may still be read by queued kernels: wait for them first.
  // (A graph's pool keeps its blocks: the graph's replays use them.)
  SAGAN_CUDA_CHECK("empty_cache", cudaDeviceSynchronize());
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) SAGAN_CUDA_CHECK("empty_cache", cudaFree(p));
    stats_.bytes_cached -= static_cast<int64_t>(size * blocks.size());
  }
  free_.clear();
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

CudaMemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

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
