// IDX / Fashion-MNIST: the real Debian files when installed, and synthetic
// gzipped IDX files (stored deflate blocks, written here without zlib) for
// every malformation the reader must catch.
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
uint32_t crc32_ieee(const std::vector<uint8_t>& d) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : d) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
void put32le(std::vector<uint8_t>& o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put32be(std::vector<uint8_t>& o, uint32_t v) {
  for (int i = 3; i >= 0; --i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// RFC 1952 gzip member holding RFC 1951 stored (uncompressed) blocks.
std::vector<uint8_t> gzip_stored(const std::vector<uint8_t>& data) {
  std::vector<uint8_t> o = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  size_t pos = 0;
  do {
    size_t n = std::min<size_t>(65535, data.size() - pos);
    o.push_back(pos + n == data.size() ? 1 : 0);  // BFINAL, BTYPE = 00
    o.push_back(static_cast<uint8_t>(n));
    o.push_back(static_cast<uint8_t>(n >> 8));
    o.push_back(static_cast<uint8_t>(~n));
    o.push_back(static_cast<uint8_t>(~n >> 8));
    o.insert(o.end(), data.begin() + static_cast<long>(pos), data.begin() + static_cast<long>(pos + n));
    pos += n;
  } while (pos < data.size());
  put32le(o, crc32_ieee(data));
  put32le(o, static_cast<uint32_t>(data.size()));
  return o;
}

std::vector<uint8_t> idx(uint32_t magic, const std::vector<uint32_t>& dims, size_t data_bytes, uint8_t seed = 0) {
  std::vector<uint8_t> o;
  put32be(o, magic);
  for (uint32_t d : dims) put32be(o, d);
  for (size_t i = 0; i < data_bytes; ++i) o.push_back(static_cast<uint8_t>((i * 31 + seed) % 251));
  return o;
}

// A (gzipped) Fashion-MNIST-style directory of n images of h x w.
void write_split(const TempDir& dir, const std::string& prefix, uint32_t n, uint32_t h, uint32_t w) {
  write_bytes(dir / (prefix + "-images-idx3-ubyte.gz"), gzip_stored(idx(0x803, {n, h, w}, size_t(n) * h * w)));
  std::vector<uint8_t> labels;
  put32be(labels, 0x801);
  put32be(labels, n);
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>((i * 3) % 10));
  write_bytes(dir / (prefix + "-labels-idx1-ubyte.gz"), gzip_stored(labels));
}
}  // namespace

TEST_CASE("Fashion-MNIST from the Debian package", "[data][data_idx]") {
  if (!fs::exists(data::kFashionMnistDir)) {
    WARN("skipped: " << data::kFashionMnistDir << " missing (apt-get install dataset-fashion-mnist)");
    return;
  }
  auto train = data::fashion_mnist("train");
  CHECK(train->size() == 60000);
  CHECK((train->channels() == 1 && train->height() == 28 && train->width() == 28 && train->num_classes() == 10));
  data::Example first = train->get(0);
  CHECK(first.label == 9);  // an ankle boot
  CHECK((first.image.height == 28 && first.image.width == 28 && first.image.channels == 1));
  std::vector<int64_t> counts(10, 0);
  for (int64_t i = 0; i < train->size(); i += 1) counts[static_cast<size_t>(train->get(i).label)] += 1;
  CHECK(counts == std::vector<int64_t>(10, 6000));  // the classes are balanced
  auto test = data::fashion_mnist("test");
  CHECK(test->size() == 10000);
  CHECK(test->get(0).label == 9);
  REQUIRE_THROWS_WITH(test->get(10000), Catch::Contains("fashion_mnist/test: index 10000 out of range"));
}

TEST_CASE("synthetic gzipped and raw IDX files load", "[data][data_idx]") {
  TempDir dir;
  write_split(dir, "train", 70000 / 1000, 5, 7);  // 70 images of 5x7
  auto ds = data::fashion_mnist("train", dir.path.string());
  CHECK((ds->size() == 70 && ds->height() == 5 && ds->width() == 7 && ds->channels() == 1));
  data::Example e = ds->get(13);
  CHECK(e.label == (13 * 3) % 10);
  for (size_t i = 0; i < 35; ++i) CHECK(e.image.pixels[i] == ((13 * 35 + i) * 31) % 251);

  // Large enough to need several stored blocks.
  std::string big = dir / "big-images-idx3-ubyte";
  write_bytes(big + ".gz", gzip_stored(idx(0x803, {3, 200, 300}, 180000)));
  data::IdxArray a = data::read_idx_u8(big + ".gz", 3);
  CHECK(a.dims == std::vector<int64_t>{3, 200, 300});
  CHECK((a.data.size() == 180000 && a.data[179999] == (179999 * 31) % 251));

  // Uncompressed files are read too (zlib passes them through).
  TempDir raw;
  write_bytes(raw / "t10k-images-idx3-ubyte", idx(0x803, {4, 2, 2}, 16));
  std::vector<uint8_t> labels;
  put32be(labels, 0x801);
  put32be(labels, 4);
  labels.insert(labels.end(), {9, 0, 1, 2});
  write_bytes(raw / "t10k-labels-idx1-ubyte", labels);
  auto t = data::fashion_mnist("test", raw.path.string());
  CHECK((t->size() == 4 && t->get(0).label == 9 && t->get(3).label == 2));
}

TEST_CASE("malformed IDX files throw naming the file", "[data][data_idx]") {
  TempDir dir;
  std::string p = dir / "x.gz";
  write_bytes(p, gzip_stored(idx(0x801, {3, 2, 2}, 12)));  // a labels magic where images belong
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3),
                      Catch::Contains(p) && Catch::Contains("bad magic 0x00000801") && Catch::Contains("0x00000803"));
  write_bytes(p, gzip_stored(idx(0x0D03, {3, 2, 2}, 12)));  // float elements
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains("bad magic 0x00000d03"));
  write_bytes(p, gzip_stored(idx(0x803, {3, 2, 2}, 11)));  // one byte short
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains(p) && Catch::Contains("truncated") &&
                                                   Catch::Contains("need 12 data bytes, found 11"));
  write_bytes(p, gzip_stored(idx(0x803, {3, 2, 2}, 13)));
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains("trailing bytes"));
  // Dimensions whose product wraps around 2^64 to 0 (so no data "needed").
  write_bytes(p, idx(0x803, {1u << 31, 8, 1u << 30}, 0));
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains("2147483648x8x1073741824 are implausibly large"));
  write_bytes(p, gzip_stored({0, 0, 8}));
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains("too short for the IDX magic"));
  write_bytes(p, gzip_stored(idx(0x803, {3, 2}, 0)));
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains("truncated header"));
  // A gzip stream cut off in the middle, and one with a wrong CRC.
  std::vector<uint8_t> gz = gzip_stored(idx(0x803, {10, 20, 30}, 6000));
  write_bytes(p, std::vector<uint8_t>(gz.begin(), gz.begin() + 3000));
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains(p) && Catch::Contains("corrupt or truncated"));
  gz[gz.size() - 6] ^= 1;
  write_bytes(p, gz);
  REQUIRE_THROWS_WITH(data::read_idx_u8(p, 3), Catch::Contains(p) && Catch::Contains("corrupt or truncated"));
  REQUIRE_THROWS_WITH(data::read_idx_u8(dir / "none.gz", 3), Catch::Contains("none.gz"));
}

TEST_CASE("fashion_mnist checks the pair of files and tells how to install them", "[data][data_idx]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(data::fashion_mnist("train", dir.path.string()),
                      Catch::Contains("apt-get install dataset-fashion-mnist") &&
                          Catch::Contains("train-images-idx3-ubyte.gz not found"));
  REQUIRE_THROWS_WITH(data::fashion_mnist("valid", dir.path.string()), Catch::Contains("'valid'"));
  write_split(dir, "train", 6, 4, 4);
  std::vector<uint8_t> labels;
  put32be(labels, 0x801);
  put32be(labels, 5);
  labels.insert(labels.end(), {1, 2, 3, 4, 5});
  write_bytes(dir / "train-labels-idx1-ubyte.gz", gzip_stored(labels));
  REQUIRE_THROWS_WITH(data::fashion_mnist("train", dir.path.string()),
                      Catch::Contains("holds 6 images but") && Catch::Contains("holds 5 labels"));
  labels = {};
  put32be(labels, 0x801);
  put32be(labels, 6);
  labels.insert(labels.end(), {1, 2, 3, 10, 5, 6});
  write_bytes(dir / "train-labels-idx1-ubyte.gz", gzip_stored(labels));
  REQUIRE_THROWS_WITH(data::fashion_mnist("train", dir.path.string()),
                      Catch::Contains("label 10 of example 3 is not in [0, 10)"));
}

TEST_CASE("a zero dimension in an IDX header is reported as such, not as a size or count mismatch",
          "[data][data_idx]") {
  TempDir dir;
  auto labels = [&](uint32_t n) {
    std::vector<uint8_t> l;
    put32be(l, 0x801);
    put32be(l, n);
    for (uint32_t i = 0; i < n; ++i) l.push_back(static_cast<uint8_t>(i % 10));
    write_bytes(dir / "train-labels-idx1-ubyte.gz", gzip_stored(l));
  };
  auto error = [&]() -> std::string {
    try {
      data::fashion_mnist("train", dir.path.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  std::string images = dir / "train-images-idx3-ubyte.gz";
  labels(6);
  // The height zeroed in an otherwise intact file: the pixels are still there.
  write_bytes(images, gzip_stored(idx(0x803, {6, 0, 4}, 6 * 4 * 4)));
  std::string e = error();
  CHECK_THAT(e, Catch::Contains(images) && Catch::Contains("dimension 1 (6x0x4) is 0"));
  CHECK_THAT(e, !Catch::Contains("trailing"));
  // The width zeroed, pixels gone too.
  write_bytes(images, gzip_stored(idx(0x803, {6, 4, 0}, 0)));
  CHECK_THAT(error(), Catch::Contains(images) && Catch::Contains("dimension 2 (6x4x0) is 0"));
  // No images at all: not "holds 0 images but 6 labels".
  write_bytes(images, gzip_stored(idx(0x803, {0, 4, 4}, 0)));
  e = error();
  CHECK_THAT(e, Catch::Contains(images) && Catch::Contains("dimension 0 (0x4x4) is 0"));
  CHECK_THAT(e, !Catch::Contains("labels"));
  // The same for a labels file.
  write_bytes(images, gzip_stored(idx(0x803, {6, 4, 4}, 6 * 4 * 4)));
  labels(0);
  CHECK_THAT(error(), Catch::Contains("train-labels-idx1-ubyte.gz") && Catch::Contains("dimension 0 (0) is 0"));
}
