// TensorBoard event files: CRC32C known answers and a reader, written here
// independently of the writer, that checks framing, CRCs and Event fields.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/io/atomic_file.h"
#include "core/io/tensorboard.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

namespace {
// Bitwise CRC-32C, a second implementation to check the table-driven one.
uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
uint32_t unmask(uint32_t m) {
  uint32_t r = m - 0xA282EAD8u;
  return (r >> 17) | (r << 15);
}

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;
};

struct Cursor {
  const std::string& s;
  size_t pos = 0;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      REQUIRE(pos < s.size());
      uint8_t b = static_cast<uint8_t>(s[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
  }
  std::string bytes(size_t n) {
    REQUIRE(pos + n <= s.size());
    std::string out = s.substr(pos, n);
    pos += n;
    return out;
  }
};

std::pair<std::string, float> parse_value(const std::string& msg) {
  Cursor c{msg};
  std::pair<std::string, float> out;
  while (c.pos < msg.size()) {
    uint64_t key = c.varint();
    if (key == (1 << 3 | 2)) {
      out.first = c.bytes(c.varint());
    } else {
      REQUIRE(key == (2 << 3 | 5));  // simple_value, fixed32
      std::string b = c.bytes(4);
      std::memcpy(&out.second, b.data(), 4);
    }
  }
  return out;
}

Event parse_event(const std::string& msg) {
  Cursor c{msg};
  Event e;
  while (c.pos < msg.size()) {
    uint64_t key = c.varint();
    switch (key) {
      case 1 << 3 | 1: {
        std::string b = c.bytes(8);
        std::memcpy(&e.wall_time, b.data(), 8);
        break;
      }
      case 2 << 3 | 0:
        e.step = static_cast<int64_t>(c.varint());
        break;
      case 3 << 3 | 2:
        e.file_version = c.bytes(c.varint());
        break;
      case 5 << 3 | 2: {
        std::string summary = c.bytes(c.varint());
        Cursor s{summary};
        while (s.pos < summary.size()) {
          REQUIRE(s.varint() == (1 << 3 | 2));
          e.values.push_back(parse_value(s.bytes(s.varint())));
        }
        break;
      }
      default:
        FAIL("unexpected Event field key " << key);
    }
  }
  return e;
}

std::vector<Event> read_events(const std::string& path) {
  std::vector<uint8_t> raw = io::read_file(path);
  std::string s(raw.begin(), raw.end());
  std::vector<Event> out;
  size_t pos = 0;
  while (pos < s.size()) {
    REQUIRE(pos + 12 <= s.size());
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, s.data() + pos, 8);
    std::memcpy(&len_crc, s.data() + pos + 8, 4);
    CHECK(unmask(len_crc) == crc32c_bitwise(s.substr(pos, 8)));
    REQUIRE(pos + 12 + len + 4 <= s.size());
    std::string payload = s.substr(pos + 12, len);
    std::memcpy(&data_crc, s.data() + pos + 12 + len, 4);
    CHECK(unmask(data_crc) == crc32c_bitwise(payload));
    out.push_back(parse_event(payload));
    pos += 12 + len + 4;
  }
  return out;
}
}  // namespace

TEST_CASE("crc32c known answers and masking", "[io][io_tensorboard]") {
  CHECK(io::crc32c("123456789", 9) == 0xE3069283u);
  CHECK(io::crc32c("", 0) == 0u);
  std::string zeros(32, '\0');
  CHECK(io::crc32c(zeros.data(), 32) == 0x8A9136AAu);  // RFC 3720 B.4 test vector
  std::string ff(32, '\xff');
  CHECK(io::crc32c(ff.data(), 32) == 0x62A8AB43u);
  // Continuing a CRC over two pieces equals one pass.
  CHECK(io::crc32c("6789", 4, io::crc32c("12345", 5)) == 0xE3069283u);
  std::string text = "The quick brown fox jumps over the lazy dog";
  CHECK(io::crc32c(text.data(), text.size()) == crc32c_bitwise(text));
  uint32_t c = 0xE3069283u;
  CHECK(io::masked_crc32c("123456789", 9) == ((c >> 15) | (c << 17)) + 0xA282EAD8u);
}

TEST_CASE("SummaryWriter event files parse back to the logged scalars", "[io][io_tensorboard]") {
  TempDir dir;
  std::string logdir = (dir.path / "run1").string();  // created by the writer
  std::string path;
  {
    io::SummaryWriter w(logdir);
    path = w.path();
    w.add_scalar("loss/D", 0.75f, 0, 1000.5);
    w.add_scalar("loss/G", -1.25f, 0, 1000.5);
    w.add_scalar("attention/gamma", 3e-4f, 123456789012LL, 1001.0);
    w.add_scalar("weird step", 1.0f, -3, 1002.0);
    w.flush();
    // flush() makes records visible to readers while the writer lives.
    CHECK(read_events(path).size() == 5);
    w.add_scalar("after_flush", 2.0f, 7);  // written by the destructor
  }
  std::string name = fs::path(path).filename().string();
  CHECK(name.rfind("events.out.tfevents.", 0) == 0);
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  CHECK(name.find(std::string(".") + host) != std::string::npos);
  CHECK(fs::path(path).parent_path() == fs::path(logdir));

  std::vector<Event> ev = read_events(path);
  REQUIRE(ev.size() == 6);
  CHECK(ev[0].file_version == "brain.Event:2");
  CHECK(ev[0].values.empty());
  CHECK(ev[0].wall_time > 1.6e9);
  CHECK(ev[1].values == std::vector<std::pair<std::string, float>>{{"loss/D", 0.75f}});
  CHECK((ev[1].step == 0 && ev[1].wall_time == 1000.5));
  CHECK(ev[2].values[0] == std::pair<std::string, float>{"loss/G", -1.25f});
  CHECK(ev[3].values[0] == std::pair<std::string, float>{"attention/gamma", 3e-4f});
  CHECK(ev[3].step == 123456789012LL);
  CHECK(ev[4].step == -3);
  CHECK(ev[5].values[0].first == "after_flush");
  CHECK(ev[5].wall_time > 1.6e9);

  // A second writer in the same directory (same second) gets its own file.
  io::SummaryWriter a(logdir), b(logdir);
  CHECK(a.path() != b.path());
  CHECK(a.path() != path);
}

TEST_CASE("SummaryWriter errors name the directory", "[io][io_tensorboard]") {
  TempDir dir;
  std::string file = (dir.path / "plain_file").string();
  io::write_file_atomic(file, std::string("x"));
  REQUIRE_THROWS_WITH(io::SummaryWriter(file + "/logs"), Catch::Contains("SummaryWriter") && Catch::Contains(file));
}

TEST_CASE("event file interop for Python's tensorboard", "[io][io_tensorboard]") {
  // Checked by tests/golden/io_interop_check.py when SAGAN_IO_INTEROP_DIR is set.
  TempDir dir;
  const char* env = std::getenv("SAGAN_IO_INTEROP_DIR");
  fs::path logdir = (env ? fs::path(env) : dir.path) / "tb";
  fs::remove_all(logdir);
  io::SummaryWriter w(logdir.string());
  for (int step = 0; step < 5; ++step) {
    w.add_scalar("loss/D", 1.0f / static_cast<float>(step + 1), step * 100);
    w.add_scalar("attention/gamma", 0.01f * static_cast<float>(step), step * 100);
  }
  w.flush();
  CHECK(read_events(w.path()).size() == 11);
}
