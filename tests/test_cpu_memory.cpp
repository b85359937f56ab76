// The CPU allocator's block cache: freed large blocks are reused by size.
#include <catch2/catch.hpp>

#include "core/ops.h"
#include "kernels/cpu/cpu_backend.h"

using namespace sagan;

TEST_CASE("cpu allocator reuses freed large blocks", "[memory]") {
  // Earlier tests may have left blocks of this size in the cache; the one
  // freed below must be the only candidate for reuse.
  cpu_empty_cache();
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({64, 1024});  // 256 KiB
    first = t.raw_data();
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  }
  CHECK(cpu_cached_bytes() >= 64 * 1024 * 4);
  Tensor again = Tensor::empty({64, 1024});
  CHECK(again.raw_data() == first);
  Tensor other = Tensor::empty({64, 1025});  // another size: a new block
  CHECK(other.raw_data() != first);
  cpu_empty_cache();
  CHECK(cpu_cached_bytes() == 0);
  // Reused memory behaves like fresh memory.
  Tensor a = Tensor::full({300, 300}, 2.0);
  CHECK(sum(a).item() == Approx(180000.0));
}

TEST_CASE("cpu allocator's cache is bounded: sizes that never come back are returned oldest first", "[memory]") {
  cpu_empty_cache();
  const size_t before = cpu_cache_limit();
  CHECK(before >= (size_t{256} << 20));  // the default: a quarter of the usable memory, at least min(1 GiB, half)
  cpu_set_cache_limit(2 << 20);        // 2 MiB
  // 200 distinct sizes of 64-80 KiB: 14 MiB freed, never asked for again.
  for (int i = 0; i < 200; ++i) Tensor::empty({16384 + 16 * i});
  CHECK(cpu_cached_bytes() <= (2u << 20));
  CHECK(cpu_cached_bytes() > (1u << 20));  // still caching, up to the limit
  // A size freed and taken again every "iteration" stays cached while the
  // others come and go.
  void* steady = nullptr;
  {
    Tensor t = Tensor::empty({64, 1024});
    steady = t.raw_data();
  }
  for (int i = 0; i < 50; ++i) {
    Tensor again = Tensor::empty({64, 1024});
    CHECK(again.raw_data() == steady);
    Tensor::empty({20000 + 16 * i});  // a new size, freed at once
  }
  // A block larger than the limit is not cached at all.
  { Tensor big = Tensor::empty({1024, 1024}); }  // 4 MiB
  CHECK(cpu_cached_bytes() <= (2u << 20));
  cpu_set_cache_limit(0);
  CHECK(cpu_cached_bytes() == 0);
  cpu_set_cache_limit(before);
}
