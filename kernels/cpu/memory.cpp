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
#include <cstring>
#include <list>
#include <map>
#include <mutex>

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
  std::multimap<size_t, std::list<Block>::iterator> by_size;
  size_t cached_bytes = 0;
  size_t limit = 0;

  void take(std::multimap<size_t, std::list<Block>::iterator>::iterator it) {
    cached_bytes -= it->first;
    by_age.erase(it->second);
    by_size.erase(it);
  }
  // Frees the oldest blocks until at most `bytes` stay cached.
  void trim_to(size_t bytes) {
    while (cached_bytes > bytes && !by_age.empty()) {
      const Block oldest = by_age.front();
      auto [lo, hi] = by_size.equal_range(oldest.size);
      for (auto it = lo; it != hi; ++it)
        if (it->second == by_age.begin()) {
          take(it);
          break;
        }
      std::free(oldest.p);
    }
  }
};

// A quarter of the machine's memory, at least 1 GiB; SAGAN_CPU_CACHE_MB
// overrides it (0: no cache).
size_t default_limit() {
  const size_t machine = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t quarter = std::max<size_t>(size_t{1} << 30, machine / 4);
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
    auto it = c.by_size.find(size);
    if (it != c.by_size.end()) {
      void* p = it->second->p;
      c.take(it);
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
  BlockCache& c = cache();
  if (size < kCacheMin || size > c.limit) {
    std::free(ptr);
    return;
  }
  std::lock_guard<std::mutex> lock(c.mu);
  c.by_size.emplace(size, c.by_age.insert(c.by_age.end(), Block{size, ptr}));
  c.cached_bytes += size;
  c.trim_to(c.limit);
}

size_t cpu_cached_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached_bytes;
}

size_t cpu_cache_limit() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.limit;
}

void cpu_set_cache_limit(size_t bytes) {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  c.trim_to(bytes);
}

void cpu_empty_cache() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.trim_to(0);
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }

}  // namespace sagan
