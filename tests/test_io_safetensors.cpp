// safetensors: round trips, the exact byte layout, a file written by Python's
// safetensors library, and every corruption the reader must reject.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/safetensors.h"
#include "sagan/core/rng.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

namespace {
// A file with the given header text (unpadded) and `data_bytes` zero bytes.
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return s + header + std::string(data_bytes, '\0');
}
}  // namespace

TEST_CASE("safetensors round trip of every dtype, views and metadata", "[io][io_safetensors]") {
  TempDir dir;
  Rng gen(7);
  Tensor f32 = Tensor::randn({2, 3, 5}, gen);
  Tensor f64 = Tensor::randn({7}, gen, DType::F64);
  Tensor i64 = Tensor::from_vector(std::vector<int64_t>{-3, 0, int64_t(1) << 50}, {3, 1});
  Tensor scalar = Tensor::scalar(2.5);
  Tensor empty = Tensor::zeros({0, 4});
  Tensor base = Tensor::randn({3, 5}, gen, DType::F64);
  Tensor strided = base.t();  // (5, 3), not contiguous
  REQUIRE_FALSE(strided.is_contiguous());
  Tensor leaf = Tensor::randn({4}, gen).set_requires_grad(true);
  NamedTensors in = {{"f32", f32},     {"i64", i64},         {"f64", f64},  {"scalar", scalar},
                     {"empty", empty}, {"strided", strided}, {"leaf", leaf}};
  io::Metadata meta = {{"step", "1200"}, {"config", "{\"lr\": 0.0001}"}};
  std::string p = dir / "rt.safetensors";
  io::save_safetensors(p, in, meta);

  io::SafetensorsFile f = io::load_safetensors(p);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    INFO(in[i].first);
    CHECK(f.tensors[i].first == in[i].first);  // header order is the given order
    const Tensor& t = f.tensors[i].second;
    CHECK(t.dtype() == in[i].second.dtype());
    CHECK(t.shape() == in[i].second.shape());
    CHECK(t.device().is_cpu());
    CHECK_FALSE(t.requires_grad());
    if (t.dtype() == DType::I64)
      CHECK(t.to_int_vector() == in[i].second.to_int_vector());
    else
      CHECK(t.to_vector() == in[i].second.to_vector());  // bit-exact
  }
  CHECK(f.at("i64").to_int_vector() == std::vector<int64_t>{-3, 0, int64_t(1) << 50});
  CHECK(f.contains("leaf"));
  CHECK_FALSE(f.contains("nothing"));
  REQUIRE_THROWS_WITH(f.at("nothing"), Catch::Contains("no tensor 'nothing'") && Catch::Contains("f32"));
}

TEST_CASE("safetensors byte layout follows the format", "[io][io_safetensors]") {
  TempDir dir;
  std::string p = dir / "layout.safetensors";
  // An F32 of 3 elements first: the F64 must still land on an 8-byte offset.
  io::save_safetensors(p, {{"a", Tensor::from_vector(std::vector<float>{1, 2, 3}, {3})},
                           {"b", Tensor::from_vector(std::vector<double>{4}, {1}, DType::F64)}});
  auto bytes = io::read_file(p);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  std::string expect =
      R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},"b":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})";
  CHECK(header.substr(0, expect.size()) == expect);
  CHECK(header.find_first_not_of(' ', expect.size()) == std::string::npos);  // space padding
  REQUIRE(bytes.size() == 8 + n + 20);
  double b;
  float a[3];
  std::memcpy(&b, bytes.data() + 8 + n, 8);
  std::memcpy(a, bytes.data() + 8 + n + 8, 12);
  CHECK(b == 4.0);
  CHECK((a[0] == 1.0f && a[1] == 2.0f && a[2] == 3.0f));
}

TEST_CASE("safetensors reads a file written by Python's safetensors", "[io][io_safetensors]") {
  // tests/golden/io_fixtures.py: weight = arange(6).reshape(2, 3) * 0.5 (F32),
  // bias = [1.5, -2.25, 1e-300] (F64), steps = [[-1], [2**40]] (I64).
  io::SafetensorsFile f = io::load_safetensors(SAGAN_TEST_DATA_DIR "/io/python_written.safetensors");
  CHECK(f.metadata == io::Metadata{{"format", "np"}, {"step", "1200"}});
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.at("weight").dtype() == DType::F32);
  CHECK(f.at("weight").shape() == Shape{2, 3});
  CHECK(f.at("weight").to_vector() == std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5});
  CHECK(f.at("bias").to_vector() == std::vector<double>{1.5, -2.25, 1e-300});
  CHECK(f.at("steps").shape() == Shape{2, 1});
  CHECK(f.at("steps").to_int_vector() == std::vector<int64_t>{-1, int64_t(1) << 40});
}

TEST_CASE("safetensors rejects corrupt files with messages naming file and tensor", "[io][io_safetensors]") {
  TempDir dir;
  int k = 0;
  auto check = [&](const std::string& content, const std::string& what, const std::string& tensor = "") {
    std::string p = dir / ("bad" + std::to_string(k++) + ".safetensors");
    io::write_file_atomic(p, content);
    INFO(what);
    REQUIRE_THROWS_WITH(io::load_safetensors(p),
                        Catch::Contains(p) && Catch::Contains(what) && Catch::Contains(tensor));
  };
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
  check("abc", "file too short");
  check(std::string("\xff\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "goes beyond the end of the file");
  check(raw_file("{\"w\": [", 0), "bad JSON header");
  check(raw_file("[1, 2]", 0), "expected an object");
  check(raw_file(R"({"w":{"dtype":"X99","shape":[1],"data_offsets":[0,4]}})", 4), "unknown dtype 'X99'", "'w'");
  check(raw_file(R"({"h":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4), "not supported", "'h'");
  check(raw_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20), "needs 24 bytes", "'w'");
  check(raw_file(R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", 24), "negative", "'w'");
  // Sizes whose product overflows, with and without a zero size among them.
  check(raw_file(R"({"z":{"dtype":"F32","shape":[0,1099511627776,1099511627776,1099511627776],"data_offsets":[0,0]}})",
                 0),
        "is too large", "'z'");
  check(raw_file(R"({"b":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0), "is too large",
        "'b'");
  check(raw_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}})", 24), "run past the data section",
        "'w'");
  check(raw_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", 24), "reversed", "'w'");
  check(raw_file(R"({"w":{"dtype":"F32","shape":[2,3]}})", 24), "data_offsets", "'w'");
  check(raw_file("{" + ok_entry + R"(,"v":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})", 24), "overlap", "'v'");
  check(raw_file("{" + ok_entry + R"(,"v":{"dtype":"F32","shape":[1],"data_offsets":[28,32]}})", 32),
        "belong to no tensor", "'v'");
  check(raw_file("{" + ok_entry + "}", 28), "cover only 24");
  check(raw_file("{" + ok_entry + "," + ok_entry + "}", 24), "duplicate tensor name 'w'");
  check(raw_file(R"({"__metadata__":{"a":1}})", 0), "__metadata__ value for 'a' is not a string");

  // A valid file cut short: the last tensor now runs past the data.
  std::string good = dir / "good.safetensors";
  io::save_safetensors(good, {{"x", Tensor::ones({4, 4})}, {"y", Tensor::ones({3}, DType::I64)}});
  auto bytes = io::read_file(good);
  check(std::string(bytes.begin(), bytes.end() - 5), "run past the data section", "'x'");  // x is laid out last
  REQUIRE_THROWS_WITH(io::load_safetensors(dir / "missing.safetensors"), Catch::Contains("No such file"));
}

TEST_CASE("safetensors write errors name the file and keep the old one", "[io][io_safetensors]") {
  TempDir dir;
  std::string p = dir / "ckpt.safetensors";
  io::save_safetensors(p, {{"w", Tensor::ones({2})}}, {{"step", "1"}});
  Tensor t = Tensor::zeros({2});
  REQUIRE_THROWS_WITH(io::save_safetensors(p, {{"w", t}, {"w", t}}),
                      Catch::Contains(p) && Catch::Contains("duplicate tensor name 'w'"));
  REQUIRE_THROWS_WITH(io::save_safetensors(p, {{"__metadata__", t}}), Catch::Contains("reserved"));
  REQUIRE_THROWS_WITH(io::save_safetensors(p, {{"", t}}), Catch::Contains("empty tensor name"));
  REQUIRE_THROWS_WITH(io::save_safetensors(p, {{"u", Tensor()}}), Catch::Contains("tensor 'u' is undefined"));
  REQUIRE_THROWS_WITH(io::save_safetensors(dir / "no/such/dir.safetensors", {{"w", t}}),
                      Catch::Contains("no/such/dir.safetensors") && Catch::Contains("No such file"));
  io::SafetensorsFile f = io::load_safetensors(p);
  CHECK(f.metadata.at("step") == "1");
  CHECK(f.at("w").to_vector() == std::vector<double>{1, 1});
  CHECK(dir.count() == 1);
}

namespace {
// Writes past `bytes` fail (EFBIG), as they would on a full disk (ENOSPC),
// for the guard's lifetime; SIGXFSZ, which would end the process, is ignored.
struct FileSizeLimit {
  rlimit old{};
  void (*old_handler)(int) = SIG_DFL;
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lower = old;
    lower.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lower);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
};
}  // namespace

TEST_CASE("a checkpoint that does not fit is reported in the file's bytes", "[io][io_safetensors]") {
  TempDir dir;
  const NamedTensors tensors = {{"big", Tensor::zeros({1 << 18})}, {"small", Tensor::ones({3})}};
  io::save_safetensors(dir / "fits.safetensors", tensors);
  const uint64_t total = fs::file_size(dir / "fits.safetensors");
  std::string p = dir / "ckpt.safetensors";
  {
    FileSizeLimit limit(64 << 10);
    // Not the 1 MiB of the tensor being written when the write failed.
    REQUIRE_THROWS_WITH(io::save_safetensors(p, tensors),
                        Catch::Contains(p) && Catch::Contains(fmt::format(" of {} bytes", total)));
  }
  CHECK_FALSE(fs::exists(p));
  CHECK(dir.count() == 1);  // no temporary left
}

TEST_CASE("safetensors interop file for Python", "[io][io_safetensors]") {
  // Checked by tests/golden/io_interop_check.py when SAGAN_IO_INTEROP_DIR is
  // set (a manual step: the suite never needs Python).
  TempDir dir;
  const char* env = std::getenv("SAGAN_IO_INTEROP_DIR");
  std::string p = (env ? fs::path(env) : dir.path) / "interop.safetensors";
  std::vector<double> six(6), halves(15);
  std::iota(six.begin(), six.end(), 0.0);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = 0.5 * static_cast<double>(i);
  NamedTensors t = {
      {"f32", Tensor::from_vector(halves, {3, 5})},
      {"f64", Tensor::from_vector(std::vector<double>{1.5, -2.25, 1e-300}, {3}, DType::F64)},
      {"i64", Tensor::from_vector(std::vector<int64_t>{-3, 0, int64_t(1) << 50}, {3, 1})},
      {"scalar", Tensor::scalar(2.5)},
      {"empty", Tensor::zeros({0, 4})},
      {"strided", Tensor::from_vector(six, {2, 3}, DType::F64).t()},
  };
  io::save_safetensors(p, t, {{"step", "1200"}, {"writer", "sagan"}});
  io::SafetensorsFile f = io::load_safetensors(p);
  CHECK(f.at("strided").to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(f.at("f32").to_vector()[14] == 7.0);
}
