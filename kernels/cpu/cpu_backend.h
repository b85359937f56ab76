// The CPU backend: Eigen for GEMM, OpenMP across both cores, and plain loops
// the compiler vectorises. It implements every kernel of core/kernels.def
// (the reference the other backends fall back to); each kernel group lives
// in its own file beside this header (kernels/cpu/<group>.cpp), named like
// its op front end.
#pragma once
#include "sagan/core/backend.h"

namespace sagan {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  const char* name() const override { return "cpu"; }

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void synchronize() override {}

  // Every kernel, with the parameters core/kernels.def gives it.
#define SAGAN_KERNEL(name, params, args) void name params;
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL
};

CpuBackend& cpu_backend();

// The CPU allocator keeps freed blocks of >= 64 KiB for reuse, split and
// merged within the segments it got from the system (block_arena.h:
// requests under 1 MiB share 2 MiB segments, larger ones get their own).
// Segments with no block in use (idle) are kept up to a limit (a quarter of
// the machine's or cgroup's memory, at least min(1 GiB, half of it), or
// SAGAN_CPU_CACHE_MB), past which the ones idle longest go back to the
// system first; cpu_empty_cache() returns every idle segment. Free bytes in
// a segment with a block in use stay held until the block is freed.
size_t cpu_cached_bytes();    // free bytes held, idle segments and the free parts of others
size_t cpu_idle_bytes();      // in idle segments: what cpu_empty_cache() would return
size_t cpu_reserved_bytes();  // of all segments, in use or free
void cpu_empty_cache();
size_t cpu_cache_limit();
void cpu_set_cache_limit(size_t bytes);  // trims the cache to it now

}  // namespace sagan
