// What plain C++ (tests, tools, benchmarks; compiled by g++) may ask of a
// CUDA device: its description and its caching allocator's statistics.
// Defined only when the engine is built with CUDA (SAGAN_WITH_CUDA); the
// device count is core's cuda_device_count() (core/backend.h).
#pragma once
#include <cstdint>
#include <string>

namespace sagan {

// The caching allocator of one device, for tests and logs.
struct CudaMemoryStats {
  int64_t malloc_calls = 0;  // cudaMalloc calls made so far
  int64_t cache_hits = 0;    // allocations served from the free lists
  int64_t bytes_in_use = 0;  // held by live tensors and workspaces
  int64_t bytes_cached = 0;  // in the free lists, ready for reuse
  int64_t peak_bytes_in_use = 0;
};
CudaMemoryStats cuda_memory_stats(int device = 0);
// Returns every cached (free) block to the driver.
void cuda_empty_cache(int device = 0);

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"; throws naming the
// device when it does not exist.
std::string cuda_device_description(int index);

}  // namespace sagan
