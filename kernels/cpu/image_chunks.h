// How the CPU convolutions (conv2d.cpp, conv2d_winograd.cpp, conv2d_rect.cpp)
// split a batch: images go side by side into chunks of about `target` units
// (GEMM columns, Winograd tiles) so each GEMM is wide enough, and with at
// least as many images as threads the chunks run in parallel, each thread
// with its own buffers; otherwise one chunk at a time (and the GEMMs thread).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace sagan::cpu {

struct ChunkPlan {
  int64_t batch, per_chunk, chunks;
  int threads;  // > 1: chunks run in parallel
};

// `per_image` units per image; about `target` units per chunk.
inline ChunkPlan plan_chunks(int64_t batch, int64_t per_image, int64_t target) {
  if (batch == 0) return {0, 1, 0, 1};
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  int64_t per = std::clamp<int64_t>((target + per_image - 1) / per_image, 1, batch);
  int64_t chunks = (batch + per - 1) / per;
  if (threads > 1 && batch >= threads) {
    // A multiple of the thread count keeps the threads evenly loaded.
    chunks = (chunks + threads - 1) / threads * threads;
    per = (batch + chunks - 1) / chunks;
    chunks = (batch + per - 1) / per;
  } else {
    threads = 1;
  }
  return {batch, per, chunks, threads};
}

// body(b0, b1, thread) for every chunk of images [b0, b1).
template <class Body>
void for_chunks(const ChunkPlan& pl, Body&& body) {
  auto run = [&](int64_t c, int tid) {
    const int64_t b0 = c * pl.per_chunk, b1 = std::min(pl.batch, b0 + pl.per_chunk);
    if (b0 < b1) body(b0, b1, tid);
  };
  if (pl.threads > 1) {
#pragma omp parallel for schedule(static) num_threads(pl.threads)
    for (int64_t c = 0; c < pl.chunks; ++c) run(c, omp_get_thread_num());
  } else {
    for (int64_t c = 0; c < pl.chunks; ++c) run(c, 0);
  }
}

}  // namespace sagan::cpu
