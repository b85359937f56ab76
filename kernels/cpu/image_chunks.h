// How the CPU convolutions (conv2d.cpp, conv2d_winograd.cpp, conv2d_rect.cpp)
// split a batch: images go side by side into chunks of about `target` units
// (GEMM columns, Winograd tiles) so each GEMM is wide enough, and a batch of
// at least kMinChunks images gives at least that many chunks, work for as
// many threads. The chunks are dealt round-robin into at most
// chunk_groups() groups; a group runs its chunks in order on one thread with its own
// buffers (and its own partial sums of weight gradients, added in group
// order at the end), and the groups run in parallel.
//
// Nothing here depends on the thread count: the same chunks, groups and
// order of sums for any OMP_NUM_THREADS on a machine, and every GEMM is
// single-threaded (CpuBackend keeps Eigen to one thread), so the results are
// the same bits on 1 thread or 64, and a run resumed with another thread
// count continues exactly. (Another machine may differ anyway: Eigen's
// blocking follows its cache sizes, -march=native its instruction set.)
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace sagan::cpu {

// How many groups share a convolution: the machine's online CPUs (at most
// 8), read once, so never OMP_NUM_THREADS or the process's CPU affinity (a
// scheduler's allocation). Each group adds a partial sum of the weight
// gradient (Co x K, or 36 x Ci x Co for Winograd F(4x4)) to write and add up, so
// more groups than cores cost time: measured on 2 cores (SAGAN-32 ch64 b64
// training step), 2 groups match the old per-thread split, 4 cost ~3-5% and
// 8 ~6-8%. (Splitting the weight gradient's output among threads instead of
// the batch would need no partial sums, but each chunk would still read and
// write the accumulators once: docs/benchmarks.md, "Winograd F(4x4,3x3)".)
inline int64_t chunk_groups() {
  static const int64_t groups = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 8);
  return groups;
}
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
  return {batch, per, chunks, std::min(chunks, chunk_groups())};
}

// A group's buffer, grown to at least n elements (never shrunk: the next
// chunk is usually the same size).
template <class T>
T* grow_scratch(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

inline bool chunks_in_parallel(const ChunkPlan& pl) {
  return pl.groups > 1 && !omp_in_parallel() && omp_get_max_threads() > 1;
}

// Work buffers (im2col columns, transforms) touch no result, so they are per
// thread, not per group: for_chunks's `slot` indexes one of this many.
inline int scratch_slots(const ChunkPlan& pl) { return chunks_in_parallel(pl) ? omp_get_max_threads() : 1; }

// body(b0, b1, group, slot) for every chunk of images [b0, b1), a group's
// chunks in order; `group` picks the partial sums, `slot` the buffers.
template <class Body>
void for_chunks(const ChunkPlan& pl, Body&& body) {
  auto run_group = [&](int64_t g, int slot) {
    for (int64_t c = g; c < pl.chunks; c += pl.groups) {
      const int64_t b0 = c * pl.per_chunk, b1 = std::min(pl.batch, b0 + pl.per_chunk);
      if (b0 < b1) body(b0, b1, static_cast<int>(g), slot);
    }
  };
  if (chunks_in_parallel(pl)) {
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < pl.groups; ++g) run_group(g, omp_get_thread_num());
  } else {
    for (int64_t g = 0; g < pl.groups; ++g) run_group(g, 0);
  }
}

// A group's partial sum, left uninitialised until its first chunk writes it
// whole (zero-filling 8 of them cost a few percent of a training step).
template <class T>
class PartialSum {
 public:
  bool started() const { return p_ != nullptr; }
  T* get(int64_t n) {
    if (!p_) p_.reset(new T[static_cast<size_t>(n)]);
    return p_.get();
  }
  const T* data() const { return p_.get(); }

 private:
  std::unique_ptr<T[]> p_;
};

}  // namespace sagan::cpu
