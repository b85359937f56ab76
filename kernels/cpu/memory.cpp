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

#include "sagan/core/asan.h"
#include "sagan/core/env_setting.h"
#include "sagan/kernels/cpu/block_arena.h"
#include "sagan/kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {
// Blocks below this size come from malloc directly (it is fast for them).
constexpr size_t kCacheMin = 64 * 1024;
// Requests below kSmall come from segments of kSmallSegment bytes of their
// own, so that a small long-lived tensor never pins a large free block
// (PyTorch's small pool); larger ones get segments of their exact size and
// split a free block only when a block of kSmall or more remains.
constexpr size_t kSmall = size_t{1} << 20, kSmallSegment = size_t{2} << 20;

// Under AddressSanitizer no block is split: each is a segment of its own,
// one malloc chunk with ASan's redzones around it, and free blocks are
// poisoned, as is the rest of a block beyond the bytes asked for, so that
// overruns, and uses of a cached block, are reported.
#if defined(SAGAN_ASAN)
constexpr bool kSplit = false;
void poison(void* p, size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
void unpoison(void* p, size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
constexpr bool kSplit = true;
void poison(void*, size_t) {}
void unpoison(void*, size_t) {}
#endif

struct BlockCache {
  std::mutex mu;
  BlockArena small{64, kCacheMin, kSplit}, large{64, kSmall, kSplit};
  std::atomic<size_t> limit{0};  // of idle segments' bytes, both arenas together

  BlockArena& arena_for(size_t size) { return size < kSmall ? small : large; }
  // Large segments go first, then small ones.
  std::vector<BlockArena::Span> trim(size_t max_idle) {
    auto room = [max_idle](const BlockArena& other) {
      return max_idle > other.idle_bytes() ? max_idle - other.idle_bytes() : 0;
    };
    std::vector<BlockArena::Span> out = large.trim(room(small));
    for (const BlockArena::Span& s : small.trim(room(large))) out.push_back(s);
    return out;
  }
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

// Checked when a tool starts (core/env_setting.h), as well as here.
const EnvSettingCheck check_cache_setting([] { (void)default_limit(); });

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

// Drops idle segments until at most `bytes` of them stay.
void trim_to(size_t bytes) {
  BlockCache& c = cache();
  std::vector<BlockArena::Span> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    dropped = c.trim(bytes);
  }
  free_all(dropped);
}

// A block of `arena` for a request of nbytes: only those are addressable.
void* hand_out(BlockArena& arena, void* p, size_t nbytes) {
  poison(p, arena.block_size(p));
  unpoison(p, nbytes);
  return p;
}
}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  const size_t size = rounded(nbytes);
  if (size < kCacheMin) {
    void* p = std::aligned_alloc(64, size);
    SAGAN_CHECK(p != nullptr, "cpu: out of memory allocating {} bytes", nbytes);
    return p;
  }
  BlockCache& c = cache();
  BlockArena& arena = c.arena_for(size);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (void* p = arena.take(size)) return hand_out(arena, p, nbytes);
  }
  // A new segment: small requests share one of kSmallSegment bytes (unless
  // the cache could not keep it); a large one gets its exact size (PyTorch's
  // 2 MiB rounding gave no smaller peak for a training step's allocations).
  const size_t bytes = kSplit && size < kSmall && c.limit.load() >= kSmallSegment ? kSmallSegment : size;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) {  // give the cache back and retry once
    cpu_empty_cache();
    p = std::aligned_alloc(64, bytes);
  }
  SAGAN_CHECK(p != nullptr, "cpu: out of memory allocating {} bytes", nbytes);
  std::lock_guard<std::mutex> lock(c.mu);
  try {
    poison(p, bytes);
    return hand_out(arena, arena.add_segment(p, bytes, size), nbytes);
  } catch (...) {
    unpoison(p, bytes);
    std::free(p);
    throw;
  }
}

void CpuBackend::deallocate(void* ptr, size_t nbytes) {
  const size_t size = rounded(nbytes);
  if (size < kCacheMin) {  // first: such a block never made the cache (cache() may throw)
    std::free(ptr);
    return;
  }
  BlockCache& c = cache();  // made by this block's allocation already
  BlockArena& arena = c.arena_for(size);
  std::vector<BlockArena::Span> dropped;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    poison(ptr, arena.block_size(ptr));
    arena.give_back(ptr);
    dropped = c.trim(c.limit.load());
  }
  free_all(dropped);
}

size_t cpu_cached_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.small.cached_bytes() + c.large.cached_bytes();
}

size_t cpu_idle_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.small.idle_bytes() + c.large.idle_bytes();
}

size_t cpu_reserved_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.small.reserved_bytes() + c.large.reserved_bytes();
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
