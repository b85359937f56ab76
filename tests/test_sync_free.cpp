// Sync-free regions (core/sync_free.h): a read of tensor values inside one
// throws naming the read and the region; the count of reads outside; index
// checks that would read a device tensor back are left to the kernels there.
#include <catch2/catch.hpp>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/sync_free.h"

using namespace sagan;

TEST_CASE("a read of tensor values inside a sync-free region throws, naming the read and the region",
          "[sync_free]") {
  Tensor t = Tensor::scalar(2.5);
  CHECK_FALSE(sync_free_active());
  const int64_t before = host_read_count();
  CHECK(t.item() == 2.5);
  CHECK(host_read_count() == before + 1);
  {
    SyncFreeScope region("the test's region");
    CHECK(sync_free_active());
    Tensor u = add(t, 1.0);  // queuing work is fine
    REQUIRE_THROWS_WITH(u.item(), Catch::Contains("Tensor::item") && Catch::Contains("the test's region"));
    REQUIRE_THROWS_WITH(u.to_vector(), Catch::Contains("Tensor::to_vector"));
    REQUIRE_THROWS_WITH(u.to_float_vector(), Catch::Contains("Tensor::to_float_vector"));
    REQUIRE_THROWS_WITH(Tensor::zeros({2}, DType::I64).to_int_vector(), Catch::Contains("Tensor::to_int_vector"));
    {
      SyncFreeScope inner("an inner region");
      REQUIRE_THROWS_WITH(u.item(), Catch::Contains("an inner region"));
    }
    REQUIRE_THROWS_WITH(u.item(), Catch::Contains("the test's region"));  // the outer one again
  }
  CHECK_FALSE(sync_free_active());
  CHECK(host_read_count() == before + 1);  // refused reads are not counted
  CHECK(t.to_vector() == std::vector<double>{2.5});
}

TEST_CASE("index checks of host indices still run inside a sync-free region", "[sync_free][index]") {
  Tensor w = Tensor::zeros({4, 3});
  SyncFreeScope region("the test's region");
  Tensor ok = embedding(w, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2}));
  CHECK(ok.size(0) == 2);
  REQUIRE_THROWS_WITH(embedding(w, Tensor::from_vector(std::vector<int64_t>{4}, {1})),
                      Catch::Contains("index 4 is out of range"));
}

TEST_CASE("a recorded graph's body runs in a sync-free region on every backend", "[sync_free]") {
  // On CUDA a host read in a captured body would synchronise the capturing
  // stream and fail the capture; the CPU's replays refuse it the same way,
  // so CPU tests find such reads.
  Tensor t = Tensor::scalar(1.0), out = Tensor::scalar(0.0);
  bool read = false;
  auto graph = backend_for(Device::cpu()).capture([&] {
    out.copy_(add(t, 1.0));  // queuing work is fine
    if (read) (void)out.item();
  });
  graph->replay();
  CHECK(out.item() == 2.0);
  read = true;
  REQUIRE_THROWS_WITH(graph->replay(), Catch::Contains("Tensor::item") && Catch::Contains("Backend::capture"));
  CHECK_FALSE(sync_free_active());
}
