// The CUDA caching allocator's bookkeeping (block_cache.h), plain C++.
#include "sagan/kernels/cuda/block_cache.h"

#include <algorithm>

#include "sagan/core/error.h"

namespace sagan::cuda {

size_t DeviceBlockCache::round_size(size_t n) {
  constexpr size_t kSmall = size_t(1) << 20;
  if (n <= kSmall) return (n + 511) / 512 * 512;
  int top = 63 - __builtin_clzll(static_cast<unsigned long long>(n));  // 2^top <= n
  size_t step = size_t(1) << (top - 3);
  return (n + step - 1) / step * step;
}

void* DeviceBlockCache::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  const size_t size = nbytes > kLimit ? nbytes : round_size(nbytes);
  const int pool = active_pool_ != 0 && std::this_thread::get_id() == pool_thread_ ? active_pool_ : 0;
  FreeLists& lists = pool != 0 ? pools_.at(pool) : free_;
  auto it = lists.find(size);
  void* p = nullptr;
  if (it != lists.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    ++stats_.cache_hits;
    stats_.bytes_cached -= static_cast<int64_t>(size);
  } else {
    p = source_allocate_locked(size, nbytes, pool != 0);
  }
  live_.emplace(p, Live{size, pool});
  stats_.bytes_in_use += static_cast<int64_t>(size);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return p;
}

void* DeviceBlockCache::source_allocate_locked(size_t size, size_t nbytes, bool in_capture) {
  void* p = nullptr;
  if (nbytes <= kLimit) {
    auto ask = [&] {
      ++stats_.malloc_calls;
      return source_.allocate(size, in_capture);
    };
    p = ask();
    if (!p && !in_capture) {  // emptying the cache would synchronise, which a capture forbids
      release_cached_locked();
      p = ask();
    }
  }
  if (!p) SAGAN_FAIL("{}", source_.out_of_memory(nbytes, size, stats_.bytes_in_use));
  return p;
}

void DeviceBlockCache::free(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  SAGAN_CHECK(it != live_.end(), "{}: deallocate of a pointer this allocator did not hand out", source_.name());
  const Live block = it->second;
  live_.erase(it);
  // A common block freed by the capturing thread during a capture may have
  // been used by the captured work, whose replays keep using its address:
  // it joins the graph's pool (and the common cache again with the graph).
  // A block of a pool already released counts as common.
  auto pool = pools_.find(block.pool);
  if (pool == pools_.end() && active_pool_ != 0 && std::this_thread::get_id() == pool_thread_)
    pool = pools_.find(active_pool_);
  (pool != pools_.end() ? pool->second : free_)[block.size].push_back(p);
  stats_.bytes_in_use -= static_cast<int64_t>(block.size);
  stats_.bytes_cached += static_cast<int64_t>(block.size);
}

int DeviceBlockCache::begin_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  SAGAN_CHECK(active_pool_ == 0, "{}: a graph capture is already under way", source_.name());
  active_pool_ = next_pool_++;
  pool_thread_ = std::this_thread::get_id();
  pools_[active_pool_];
  return active_pool_;
}

void DeviceBlockCache::end_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  active_pool_ = 0;
}

void DeviceBlockCache::release_pool(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto pool = pools_.find(id);
  if (pool == pools_.end()) return;
  for (auto& [size, blocks] : pool->second) free_[size].insert(free_[size].end(), blocks.begin(), blocks.end());
  pools_.erase(pool);
  if (active_pool_ == id) active_pool_ = 0;
}

void DeviceBlockCache::release_cached_locked() {
  if (std::all_of(free_.begin(), free_.end(), [](const auto& kv) { return kv.second.empty(); })) return;
  // Cached blocks may still be read by queued kernels: wait for them first.
  // (A graph's pool keeps its blocks: the graph's replays use them.)
  source_.synchronize();
  // Each block leaves the lists before it goes back, so that a release
  // that throws leaves no block listed twice over (a double free later).
  for (auto& [size, blocks] : free_) {
    while (!blocks.empty()) {
      void* p = blocks.back();
      blocks.pop_back();
      stats_.bytes_cached -= static_cast<int64_t>(size);
      source_.release(p);
    }
  }
  free_.clear();
}

void DeviceBlockCache::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

CudaMemoryStats DeviceBlockCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace sagan::cuda
