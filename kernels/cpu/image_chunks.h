// How the CPU convolutions (conv2d.cpp, conv2d_winograd.cpp, conv2d_rect.cpp)
// split a batch: images go side by side into chunks of about `target` units
// (GEMM columns, Winograd tiles) so each GEMM is wide enough, and a batch of
// at least kMinChunks images gives at least that many chunks, work for as
// many threads. The chunks are dealt round-robin into at most kGroups
// groups; a group runs its chunks in order on one thread with its own
// buffers (and its own partial sums of weight gradients, added in group
// order at the end), and the groups run in parallel.
//
// Nothing here depends on the thread count: the same chunks, groups and
// order of sums for any OMP_NUM_THREADS, and every GEMM is single-threaded
// (CpuBackend keeps Eigen to one thread), so the results are the same bits
// on 1 thread or 64, and a run resumed with another thread count continues
// exactly.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace sagan::cpu {

// Up to 8 threads share a convolution; more would each add a partial sum of
// the weight gradient to add up (memory traffic of Co x K per group).
constexpr int64_t kGroups = 8;
constexpr int64_t kMinChunks = 8;

struct ChunkPlan {
  int64_t batch, per_chunk, chunks;
  int64_t groups;  // chunk c belongs to group c % groups
};

// `per_image` units per image; about `target` units per chunk.
inline ChunkPlan plan_chunks(int64_t batch, int64_t per_image, int64_t target) {
  if (batch == 0) return {0, 1, 0, 0};
  int64_t per = std::clamp<int64_t>((target + per_image - 1) / per_image, 1, batch);
  per = std::min(per, std::max<int64_t>(1, batch / kMinChunks));
  // As many chunks, their sizes evened out.
  int64_t chunks = (batch + per - 1) / per;
  per = (batch + chunks - 1) / chunks;
  chunks = (batch + per - 1) / per;
  return {batch, per, chunks, std::min(chunks, kGroups)};
}

// body(b0, b1, group) for every chunk of images [b0, b1), a group's chunks
// in order.
template <class Body>
void for_chunks(const ChunkPlan& pl, Body&& body) {
  auto run_group = [&](int64_t g) {
    for (int64_t c = g; c < pl.chunks; c += pl.groups) {
      const int64_t b0 = c * pl.per_chunk, b1 = std::min(pl.batch, b0 + pl.per_chunk);
      if (b0 < b1) body(b0, b1, static_cast<int>(g));
    }
  };
  if (pl.groups > 1 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < pl.groups; ++g) run_group(g);
  } else {
    for (int64_t g = 0; g < pl.groups; ++g) run_group(g);
  }
}

}  // namespace sagan::cpu
