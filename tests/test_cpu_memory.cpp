// The CPU allocator's block cache (kernels/cpu/memory.cpp): freed blocks are
// reused, the idle ones kept up to a limit. The arena's splitting and
// merging have tests of their own (tests/test_block_arena.cpp).
#include <catch2/catch.hpp>

#include "sagan/core/ops.h"
#include "sagan/kernels/cpu/cpu_backend.h"

using namespace sagan;

namespace {
constexpr size_t kMiB = size_t{1} << 20;
}

TEST_CASE("cpu allocator reuses freed large blocks", "[memory]") {
  cpu_empty_cache();
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({256, 1025});  // 1 kMiB + 4 KiB: a segment of its own
    first = t.raw_data();
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  }
  CHECK(cpu_idle_bytes() >= 256 * 1025 * 4);
  Tensor again = Tensor::empty({256, 1025});
  CHECK(again.raw_data() == first);
  Tensor small = Tensor::empty({64, 1024});  // 256 KiB: from a small segment
  CHECK(reinterpret_cast<uintptr_t>(small.raw_data()) % 64 == 0);
  CHECK(small.raw_data() != first);
  cpu_empty_cache();
  CHECK(cpu_idle_bytes() == 0);
  // Reused memory behaves like fresh memory.
  Tensor a = Tensor::full({300, 300}, 2.0);
  CHECK(sum(a).item() == Approx(180000.0));
}

TEST_CASE("cpu allocator's cache is bounded: sizes that never come back are returned oldest first", "[memory]") {
  cpu_empty_cache();
  const size_t before = cpu_cache_limit();
  CHECK(before >= (size_t{256} << 20));  // the default: a quarter of the usable memory, at least min(1 GiB, half)
  cpu_set_cache_limit(4 * kMiB);
  // 100 distinct sizes just over 1 kMiB: 100 kMiB freed, never asked for again.
  for (int i = 0; i < 100; ++i) Tensor::empty({262144 + 16 * i});
  CHECK(cpu_idle_bytes() <= 4 * kMiB);
  CHECK(cpu_idle_bytes() > 2 * kMiB);  // still caching, up to the limit
  // A size freed and taken again every "iteration" stays cached while the
  // others come and go.
  void* steady = nullptr;
  {
    Tensor t = Tensor::empty({512, 1024});  // 2 kMiB
    steady = t.raw_data();
  }
  for (int i = 0; i < 50; ++i) {
    Tensor again = Tensor::empty({512, 1024});
    CHECK(again.raw_data() == steady);
    Tensor::empty({300000 + 16 * i});  // a new size, freed at once
  }
  // A segment larger than the limit is not cached at all.
  { Tensor big = Tensor::empty({2048, 1024}); }  // 8 kMiB
  CHECK(cpu_idle_bytes() <= 4 * kMiB);
  cpu_set_cache_limit(0);
  CHECK(cpu_idle_bytes() == 0);
  cpu_set_cache_limit(before);
}
