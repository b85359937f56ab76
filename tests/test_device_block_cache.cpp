// The CUDA caching allocator's bookkeeping (kernels/cuda/block_cache.h) on
// the CPU, over a stand-in for cudaMalloc: size classes, reuse, the retry
// after emptying the cache, and the rules of graph pools that keep a
// replayed graph's memory from anyone else.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "sagan/core/error.h"
#include "sagan/kernels/cuda/block_cache.h"

using namespace sagan;
using namespace sagan::cuda;

namespace {
constexpr size_t kCacheMiB = size_t{1} << 20;

// A device of `capacity` bytes; counts what the cache asks of it.
class FakeDevice final : public DeviceMemorySource {
 public:
  explicit FakeDevice(size_t capacity) : capacity_(capacity) {}
  ~FakeDevice() override {
    for (auto [p, n] : held_) std::free(p);
  }
  void* allocate(size_t bytes, bool in_capture) override {
    ++asks;
    captured_allocations += in_capture ? 1 : 0;
    queued_work = true;  // the new memory will be used by kernels
    if (bytes > capacity_ - used_) return nullptr;
    void* p = std::malloc(bytes);
    held_.emplace(p, bytes);
    used_ += bytes;
    return p;
  }
  void release(void* p) override {
    REQUIRE_FALSE(queued_work);  // synchronised first: no queued kernel may still use it
    auto it = held_.find(p);
    REQUIRE(it != held_.end());
    used_ -= it->second;
    std::free(p);
    held_.erase(it);
  }
  void synchronize() override {
    ++syncs;
    queued_work = false;
  }
  std::string out_of_memory(size_t nbytes, size_t size, int64_t in_use) override {
    return fmt::format("fake:0: out of memory allocating {} bytes ({} rounded), {} in use", nbytes, size, in_use);
  }
  std::string name() const override { return "fake:0"; }

  size_t used() const { return used_; }
  int asks = 0, syncs = 0, captured_allocations = 0;
  bool queued_work = false;

 private:
  size_t capacity_, used_ = 0;
  std::map<void*, size_t> held_;
};
}  // namespace

TEST_CASE("device block cache: size classes", "[block_cache]") {
  CHECK(DeviceBlockCache::round_size(1) == 512);
  CHECK(DeviceBlockCache::round_size(512) == 512);
  CHECK(DeviceBlockCache::round_size(513) == 1024);
  CHECK(DeviceBlockCache::round_size(kCacheMiB) == kCacheMiB);
  CHECK(DeviceBlockCache::round_size(kCacheMiB + 1) == kCacheMiB + kCacheMiB / 8);  // 8 classes per power of two
  CHECK(DeviceBlockCache::round_size(3 * kCacheMiB) == 3 * kCacheMiB);
  CHECK(DeviceBlockCache::round_size(3 * kCacheMiB + 1) == 3 * kCacheMiB + kCacheMiB / 4);
  for (size_t n : {size_t{700}, kCacheMiB + 12345, 77 * kCacheMiB + 1, size_t{5} << 40}) {
    const size_t r = DeviceBlockCache::round_size(n);
    CHECK(r >= n);
    CHECK(r - n <= std::max<size_t>(511, n / 8));  // at most 12.5% slack
  }
}

TEST_CASE("device block cache: a freed block serves its size class again, without the device", "[block_cache]") {
  FakeDevice dev(64 * kCacheMiB);
  DeviceBlockCache cache(dev);
  CHECK(cache.allocate(0) == nullptr);
  void* a = cache.allocate(1000);
  cache.free(a);
  void* b = cache.allocate(900);  // the same 1024-byte class
  CHECK(b == a);
  void* c = cache.allocate(2000);  // another class: fresh memory
  CHECK(c != a);
  CudaMemoryStats s = cache.stats();
  CHECK(s.malloc_calls == 2);
  CHECK(s.cache_hits == 1);
  CHECK(s.bytes_in_use == 1024 + 2048);
  CHECK(s.bytes_cached == 0);
  cache.free(b);
  cache.free(c);
  s = cache.stats();
  CHECK(s.bytes_in_use == 0);
  CHECK(s.bytes_cached == 1024 + 2048);
  CHECK(s.peak_bytes_in_use == 1024 + 2048);
  CHECK_THROWS_WITH(cache.free(reinterpret_cast<void*>(0x1234)),
                    Catch::Contains("fake:0: deallocate of a pointer this allocator did not hand out"));
  cache.empty_cache();
  CHECK(dev.syncs == 1);  // before giving memory back
  CHECK(dev.used() == 0);
  CHECK(cache.stats().bytes_cached == 0);
  cache.empty_cache();
  CHECK(dev.syncs == 1);  // nothing cached: no synchronisation
}

TEST_CASE("device block cache: out of memory empties the cache and retries once, then names the request",
          "[block_cache]") {
  FakeDevice dev(4 * kCacheMiB);
  DeviceBlockCache cache(dev);
  cache.free(cache.allocate(3 * kCacheMiB));  // cached: the device is 3 kCacheMiB full
  void* p = cache.allocate(2 * kCacheMiB);    // fits only once the cached block is released
  CHECK(p != nullptr);
  CHECK(dev.syncs == 1);
  CHECK(cache.stats().bytes_cached == 0);
  CHECK(cache.stats().malloc_calls == 3);
  CHECK_THROWS_WITH(cache.allocate(3 * kCacheMiB), Catch::Contains("fake:0: out of memory allocating 3145728 bytes"));
  const int asks = dev.asks, syncs = dev.syncs;
  cache.free(p);  // cached: an over-limit request must not empty the cache for nothing
  CHECK_THROWS_WITH(cache.allocate(size_t{1} << 61), Catch::Contains("out of memory"));
  CHECK_THROWS_WITH(cache.allocate(SIZE_MAX), Catch::Contains("out of memory"));  // its class would wrap
  CHECK(dev.asks == asks);                                                        // never asked
  CHECK(dev.syncs == syncs);
  CHECK(cache.stats().bytes_cached == static_cast<int64_t>(2 * kCacheMiB));
}

TEST_CASE("device block cache: a graph's pool keeps its memory from everyone else until released", "[block_cache]") {
  FakeDevice dev(256 * kCacheMiB);
  DeviceBlockCache cache(dev);
  void* common = cache.allocate(kCacheMiB);  // before the capture
  const int pool = cache.begin_pool();
  CHECK_THROWS_WITH(cache.begin_pool(), Catch::Contains("a graph capture is already under way"));
  void* captured = cache.allocate(kCacheMiB);  // the capturing thread: from the pool, fresh memory
  CHECK(captured != common);
  CHECK(dev.captured_allocations == 1);
  // Another thread keeps the common cache, and never gets the pool's blocks.
  void* other_thread = nullptr;
  std::thread([&] { other_thread = cache.allocate(kCacheMiB); }).join();
  CHECK(dev.captured_allocations == 1);
  cache.free(common);  // freed by the capturing thread: the captured work may use it
  void* again = nullptr;
  std::thread([&] { again = cache.allocate(kCacheMiB); }).join();
  CHECK(again != common);  // not back in the common cache
  cache.free(captured);
  void* in_pool = cache.allocate(kCacheMiB);  // the capturing thread reuses the pool's blocks
  CHECK((in_pool == captured || in_pool == common));
  // Out of memory during a capture: no emptying (it would synchronise),
  // though the common cache holds a block another thread freed.
  std::thread([&] { cache.free(other_thread); }).join();
  const CudaMemoryStats before = cache.stats();
  const int syncs = dev.syncs;
  CHECK_THROWS(cache.allocate(512 * kCacheMiB));
  CHECK(dev.syncs == syncs);
  CHECK(cache.stats().malloc_calls == before.malloc_calls + 1);  // no retry
  CHECK(cache.stats().bytes_cached == before.bytes_cached);
  void* refreed = other_thread;
  std::thread([&] { other_thread = cache.allocate(kCacheMiB); }).join();
  CHECK(other_thread == refreed);  // the common cache kept it
  cache.end_pool();
  // After the capture the pool still owns its blocks: the graph replays on them.
  cache.free(in_pool);
  std::set<void*> pool_blocks = {captured, common};
  void* after = cache.allocate(kCacheMiB);
  CHECK(pool_blocks.count(after) == 0);
  cache.free(after);
  cache.free(other_thread);
  cache.free(again);
  cache.empty_cache();  // the common blocks go; the pool's stay (their graph may still replay)
  CHECK(dev.used() == 2 * kCacheMiB);
  cache.release_pool(pool);
  // Now the common cache serves them.
  std::set<void*> served;
  for (int i = 0; i < 2; ++i) served.insert(cache.allocate(kCacheMiB));
  CHECK(served == pool_blocks);
}

TEST_CASE("device block cache: a pool block still in use when its graph goes joins the common cache when freed",
          "[block_cache]") {
  FakeDevice dev(256 * kCacheMiB);
  DeviceBlockCache cache(dev);
  const int pool = cache.begin_pool();
  void* kept = cache.allocate(4 * kCacheMiB);  // e.g. a graph output still read
  cache.end_pool();
  cache.release_pool(pool);
  cache.free(kept);
  CHECK(cache.stats().bytes_cached == static_cast<int64_t>(4 * kCacheMiB));
  CHECK(cache.allocate(4 * kCacheMiB) == kept);  // common now
  cache.free(kept);
  // A new capture gets a new pool: its thread takes fresh memory, not the
  // common cache's block of the same class.
  const int pool2 = cache.begin_pool();
  CHECK(pool2 != pool);
  void* fresh = cache.allocate(4 * kCacheMiB);
  CHECK(fresh != kept);
  cache.end_pool();
  cache.release_pool(pool2);
  cache.release_pool(pool2);  // twice: nothing to do
}

TEST_CASE("device block cache: a block of a released pool freed during a later capture joins that capture's pool",
          "[block_cache]") {
  FakeDevice dev(256 * kCacheMiB);
  DeviceBlockCache cache(dev);
  const int first = cache.begin_pool();
  void* kept = cache.allocate(4 * kCacheMiB);  // outlives its graph, e.g. an output
  cache.end_pool();
  cache.release_pool(first);
  // The next capture's work reads it and frees it: its replays keep using
  // the address, so nobody else may get the block.
  const int second = cache.begin_pool();
  cache.free(kept);
  cache.end_pool();
  void* other = cache.allocate(4 * kCacheMiB);
  CHECK(other != kept);
  cache.free(other);
  cache.release_pool(second);  // with its graph gone, the common cache serves it
  std::set<void*> served = {cache.allocate(4 * kCacheMiB), cache.allocate(4 * kCacheMiB)};
  CHECK(served.count(kept) == 1);
}
