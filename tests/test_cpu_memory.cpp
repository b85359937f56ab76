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
