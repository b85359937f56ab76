// CPU memory: 64-byte aligned so that Eigen and AVX loads never split lines,
// with a cache of freed blocks. A training step allocates the same sizes
// every iteration; without the cache each large output is a fresh mmap whose
// pages fault in on first touch, which costs more than most elementwise
// kernels themselves. Blocks are split and merged within the segments the
// system gave (kernels/cpu/block_arena.h), so memory freed by one size
// serves others.
//
// The cache is bounded: sizes that never come back (evaluation over images
// of varying size, a short last batch) would otherwise pile up for the life
// of the process. Past the limit the segments idle longest go back to the
// system first; a training step's, used every iteration, stay cached.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SAGAN_CPU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAGAN_CPU_ASAN 1
#endif
#endif
#if defined(SAGAN_CPU_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#include "core/env_setting.h"
#include "kernels/cpu/block_arena.h"
#include "kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {
// Blocks below this size come from malloc directly (it is fast for them).
constexpr size_t kCacheMin = 64 * 1024;

// Under AddressSanitizer blocks sit next to each other inside a segment,
// where its own redzones are not: each block gets a poisoned tail of its
// own, and free blocks are poisoned whole, so that an overrun, or a use
// after free, is reported as it would be with malloc.
#if defined(SAGAN_CPU_ASAN)
constexpr size_t kRedzone = 64;
void poison(void* p, size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
void unpoison(void* p, size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
constexpr size_t kRedzone = 0;
void poison(void*, size_t) {}
void unpoison(void*, size_t) {}
#endif

struct BlockCache {
  std::mutex mu;
  BlockArena arena{64, kCacheMin};
  std::atomic<size_t> limit{0};
};

void free_all(const std::vector<BlockArena::Span>& segments) {
  for (const BlockArena::Span& s : segments) {
    unpoison(s.base, s.bytes);
    std::free(s.base);
  }
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

// Drops idle segments until the cache holds at most `bytes`.
void trim_to(size_t bytes) {
  BlockCache& c = cache();
  std::vector<BlockArena::Span> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    dropped = c.arena.trim(bytes);
  }
  free_all(dropped);
}

// A block of the arena for a request of nbytes: only those are addressable.
void* hand_out(BlockCache& c, void* p, size_t nbytes) {
  poison(p, c.arena.block_size(p));
  unpoison(p, nbytes);
  return p;
}
}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  size_t size = rounded(nbytes);
  if (size < kCacheMin) {
    void* p = std::aligned_alloc(64, size);
    SAGAN_CHECK(p != nullptr, "cpu: out of memory allocating {} bytes", nbytes);
    return p;
  }
  size += kRedzone;
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (void* p = c.arena.take(size)) return hand_out(c, p, nbytes);
  }
  // A new segment of exactly the size: rounding it up (PyTorch's 2 MiB
  // steps) gave no smaller peak for a training step's allocations.
  void* p = std::aligned_alloc(64, size);
  if (!p) {  // give the cache back and retry once
    cpu_empty_cache();
    p = std::aligned_alloc(64, size);
  }
  SAGAN_CHECK(p != nullptr, "cpu: out of memory allocating {} bytes", nbytes);
  std::lock_guard<std::mutex> lock(c.mu);
  return hand_out(c, c.arena.add_segment(p, size, size), nbytes);
}

void CpuBackend::deallocate(void* ptr, size_t nbytes) {
  if (rounded(nbytes) < kCacheMin) {  // first: such a block never made the cache (cache() may throw)
    std::free(ptr);
    return;
  }
  BlockCache& c = cache();  // made by this block's allocation already
  std::vector<BlockArena::Span> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    poison(ptr, c.arena.block_size(ptr));
    c.arena.give_back(ptr);
    dropped = c.arena.trim(c.limit.load());
  }
  free_all(dropped);
}

size_t cpu_cached_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.arena.cached_bytes();
}

size_t cpu_reserved_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.arena.reserved_bytes();
}

size_t cpu_cache_limit() { return cache().limit.load(); }

void cpu_set_cache_limit(size_t bytes) {
  cache().limit = bytes;
  trim_to(bytes);
}

void cpu_empty_cache() { trim_to(0); }

void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }

}  // namespace sagan
