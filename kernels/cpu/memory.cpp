// CPU memory: 64-byte aligned so that Eigen and AVX loads never split lines,
// with a cache of freed blocks keyed by size. A training step allocates the
// same sizes every iteration; without the cache each large output is a fresh
// mmap whose pages fault in on first touch, which costs more than most
// elementwise kernels themselves.
//
// The cache is bounded: sizes that never come back (evaluation over images
// of varying size, a short last batch) would otherwise pile up for the life
// of the process. Past the limit the blocks freed longest ago go back to the
// system first; a training step's sizes, freed and taken every iteration,
// stay young and stay cached.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <vector>

#include "core/env_setting.h"
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {
// Blocks below this size come from malloc directly (it is fast for them).
constexpr size_t kCacheMin = 64 * 1024;

struct Block {
  size_t size;
  void* p;
};

struct BlockCache {
  std::mutex mu;
  std::list<Block> by_age;  // freed longest ago first
  // Within one size, blocks in the order they were freed (a multimap keeps
  // equal keys in insertion order): the first is the oldest, the last the
  // youngest, which allocate reuses (its lines may still be in cache).
  std::multimap<size_t, std::list<Block>::iterator> by_size;
  size_t cached_bytes = 0;
  std::atomic<size_t> limit{0};

  void take(std::multimap<size_t, std::list<Block>::iterator>::iterator it) {
    cached_bytes -= it->first;
    by_age.erase(it->second);
    by_size.erase(it);
  }
  // Drops the oldest blocks until at most `bytes` stay cached; returns them
  // for the caller to free once the lock is released.
  std::vector<void*> trim_to(size_t bytes) {
    std::vector<void*> out;
    while (cached_bytes > bytes && !by_age.empty()) {
      const Block oldest = by_age.front();
      auto it = by_size.lower_bound(oldest.size);  // the oldest of its size: this block
      while (it->second != by_age.begin()) ++it;
      take(it);
      out.push_back(oldest.p);
    }
    return out;
  }
};

void free_all(const std::vector<void*>& blocks) {
  for (void* p : blocks) std::free(p);
}

// The memory this process may use: the machine's, or its cgroup's limit
// when lower (a container on a large host).
size_t usable_memory() {
  size_t bytes = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    unsigned long long limit = 0;
    if (in >> limit && limit > 0 && limit < bytes) bytes = static_cast<size_t>(limit);  // "max": not a number
  }
  return bytes;
}

// A quarter of the usable memory, at least min(1 GiB, half of it);
// SAGAN_CPU_CACHE_MB overrides it (0: no cache).
size_t default_limit() {
  const size_t usable = usable_memory();
  const size_t quarter = std::max(usable / 4, std::min<size_t>(size_t{1} << 30, usable / 2));
  return env_setting<size_t>("SAGAN_CPU_CACHE_MB", quarter, [](const std::string& text, const std::string& what) {
    size_t used = 0;
    unsigned long long mb = 0;
    try {
      mb = std::stoull(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SAGAN_CHECK(used == text.size() && text[0] != '-' && mb <= (size_t{1} << 40),
                "{}: expected the CPU block cache's limit in MiB (0 or more), got '{}'", what, text);
    return static_cast<size_t>(mb) << 20;
  });
}

// Made by the first allocation of a cached size (where a bad
// SAGAN_CPU_CACHE_MB is reported, as an error of that allocation), never
// by a free: deallocate runs in destructors and must not throw.
BlockCache& cache() {
  static BlockCache* c = [] {
    auto* b = new BlockCache;  // never destroyed: tensors may outlive statics
    b->limit = default_limit();
    return b;
  }();
  return *c;
}

size_t rounded(size_t nbytes) { return (nbytes + 63) / 64 * 64; }
}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  size_t size = rounded(nbytes);
  if (size >= kCacheMin) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto [lo, hi] = c.by_size.equal_range(size);
    if (lo != hi) {
      auto youngest = std::prev(hi);
      void* p = youngest->second->p;
      c.take(youngest);
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (!p && size >= kCacheMin) {  // give the cache back and retry once
    cpu_empty_cache();
    p = std::aligned_alloc(64, size);
  }
  SAGAN_CHECK(p != nullptr, "cpu: out of memory allocating {} bytes", nbytes);
  return p;
}

void CpuBackend::deallocate(void* ptr, size_t nbytes) {
  size_t size = rounded(nbytes);
  if (size < kCacheMin) {  // first: such a block never made the cache (cache() may throw)
    std::free(ptr);
    return;
  }
  BlockCache& c = cache();  // made by this block's allocation already
  if (size > c.limit.load()) {
    std::free(ptr);
    return;
  }
  std::vector<void*> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.by_size.emplace(size, c.by_age.insert(c.by_age.end(), Block{size, ptr}));
    c.cached_bytes += size;
    dropped = c.trim_to(c.limit.load());
  }
  free_all(dropped);
}

size_t cpu_cached_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached_bytes;
}

size_t cpu_cache_limit() { return cache().limit.load(); }

void cpu_set_cache_limit(size_t bytes) {
  BlockCache& c = cache();
  std::vector<void*> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.limit = bytes;
    dropped = c.trim_to(bytes);
  }
  free_all(dropped);
}

void cpu_empty_cache() {
  BlockCache& c = cache();
  std::vector<void*> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    dropped = c.trim_to(0);
  }
  free_all(dropped);
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }

}  // namespace sagan
