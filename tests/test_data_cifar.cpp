// CIFAR-10 binary batches, synthesised in a temp dir.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/models/data/dataset.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

namespace {
// Record r of file f: label (f + r) % 10, channel c plane value (f * 50 + r * 7 + c * 3 + p) % 256.
std::vector<uint8_t> batch(int f, int records) {
  std::vector<uint8_t> o;
  for (int r = 0; r < records; ++r) {
    o.push_back(static_cast<uint8_t>((f + r) % 10));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) o.push_back(static_cast<uint8_t>((f * 50 + r * 7 + c * 3 + p) % 256));
  }
  return o;
}
}  // namespace

TEST_CASE("CIFAR-10 batches load with planes interleaved into HWC", "[data][data_cifar]") {
  TempDir dir;
  for (int f = 1; f <= 5; ++f) write_bytes(dir / fmt::format("data_batch_{}.bin", f), batch(f, f == 3 ? 2 : 3));
  write_bytes(dir / "test_batch.bin", batch(0, 4));
  auto train = data::cifar10(dir.path.string(), "train");
  CHECK(train->size() == 14);
  CHECK((train->channels() == 3 && train->height() == 32 && train->width() == 32 && train->num_classes() == 10));
  // Example 7 is file 3, record 1 (files hold 3, 3, 2, 3, 3 records).
  data::Example e = train->get(7);
  CHECK(e.label == (3 + 1) % 10);
  REQUIRE((e.image.height == 32 && e.image.width == 32 && e.image.channels == 3));
  for (int c = 0; c < 3; ++c) {
    CHECK(e.image.at(0, 0, c) == (3 * 50 + 7 + c * 3) % 256);
    CHECK(e.image.at(2, 5, c) == (3 * 50 + 7 + c * 3 + 2 * 32 + 5) % 256);
    CHECK(e.image.at(31, 31, c) == (3 * 50 + 7 + c * 3 + 1023) % 256);
  }
  auto test = data::cifar10(dir.path.string(), "test");
  CHECK(test->size() == 4);
  CHECK(test->get(3).label == 3);
  REQUIRE_THROWS_WITH(test->get(-1), Catch::Contains("cifar10/test: index -1 out of range"));
}

TEST_CASE("CIFAR-10 rejects bad sizes, labels and missing files", "[data][data_cifar]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(data::cifar10(dir.path.string(), "test"),
                      Catch::Contains("test_batch.bin not found") && Catch::Contains("cifar-10-binary"));
  std::vector<uint8_t> b = batch(0, 2);
  b.pop_back();
  write_bytes(dir / "test_batch.bin", b);
  REQUIRE_THROWS_WITH(
      data::cifar10(dir.path.string(), "test"),
      Catch::Contains("test_batch.bin") && Catch::Contains("6145 bytes is not a positive multiple of the 3073"));
  b = batch(0, 3);
  b[2 * 3073] = 10;
  write_bytes(dir / "test_batch.bin", b);
  REQUIRE_THROWS_WITH(data::cifar10(dir.path.string(), "test"), Catch::Contains("record 2 has label 10"));
  write_bytes(dir / "test_batch.bin", {});
  REQUIRE_THROWS_WITH(data::cifar10(dir.path.string(), "test"), Catch::Contains("size 0 bytes"));
  REQUIRE_THROWS_WITH(data::cifar10(dir.path.string(), "val"), Catch::Contains("'val'"));
}
