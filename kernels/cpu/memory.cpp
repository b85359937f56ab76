// CPU memory: 64-byte aligned so that Eigen and AVX loads never split lines,
// with a cache of freed blocks keyed by size. A training step allocates the
// same sizes every iteration; without the cache each large output is a fresh
// mmap whose pages fault in on first touch, which costs more than most
// elementwise kernels themselves.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {
// Blocks below this size come from malloc directly (it is fast for them).
constexpr size_t kCacheMin = 64 * 1024;

struct BlockCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  size_t cached_bytes = 0;
  ~BlockCache() {
    for (auto& [size, p] : free_blocks) std::free(p);
  }
};

BlockCache& cache() {
  static BlockCache* c = new BlockCache;  // never destroyed: tensors may outlive statics
  return *c;
}

size_t rounded(size_t nbytes) { return (nbytes + 63) / 64 * 64; }
}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  size_t size = rounded(nbytes);
  if (size >= kCacheMin) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached_bytes -= size;
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
  if (size < kCacheMin) {
    std::free(ptr);
    return;
  }
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks.emplace(size, ptr);
  c.cached_bytes += size;
}

size_t cpu_cached_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached_bytes;
}

void cpu_empty_cache() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, p] : c.free_blocks) std::free(p);
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }

}  // namespace sagan
