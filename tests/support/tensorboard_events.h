// A TensorBoard event-file reader for tests, written independently of
// core/io/tensorboard.cpp: checks TFRecord framing and both masked CRC32Cs
// (with a bitwise CRC, not the writer's table) and decodes the Event fields
// the writer uses (file_version, scalar values, image values, SessionLog status).
#pragma once
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sagan/core/io/atomic_file.h"

namespace sagan::testing {

// Bitwise CRC-32C, a second implementation to check the table-driven one.
inline uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
inline uint32_t unmask(uint32_t m) {
  uint32_t r = m - 0xA282EAD8u;
  return (r >> 17) | (r << 15);
}

struct ImageValue {
  std::string tag;
  int64_t height = 0, width = 0, colorspace = 0;
  std::string encoded;  // PNG bytes
};

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;
  std::vector<ImageValue> images;
  int64_t session_status = 0;  // SessionLog.status: 1 START (0: no session_log)
  std::string raw;             // the record's bytes, as written
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

// Summary.Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
inline ImageValue parse_image(const std::string& msg) {
  Cursor c{msg};
  ImageValue img;
  while (c.pos < msg.size()) {
    uint64_t key = c.varint();
    switch (key) {
      case 1 << 3 | 0:
        img.height = static_cast<int64_t>(c.varint());
        break;
      case 2 << 3 | 0:
        img.width = static_cast<int64_t>(c.varint());
        break;
      case 3 << 3 | 0:
        img.colorspace = static_cast<int64_t>(c.varint());
        break;
      case 4 << 3 | 2:
        img.encoded = c.bytes(c.varint());
        break;
      default:
        FAIL("unexpected Summary.Image field key " << key);
    }
  }
  return img;
}

// Summary.Value { string tag = 1; float simple_value = 2; Image image = 4; }
inline void parse_value(const std::string& msg, Event& e) {
  Cursor c{msg};
  std::string tag;
  std::optional<float> scalar;
  std::optional<ImageValue> image;
  while (c.pos < msg.size()) {
    uint64_t key = c.varint();
    if (key == (1 << 3 | 2)) {
      tag = c.bytes(c.varint());
    } else if (key == (4 << 3 | 2)) {
      image = parse_image(c.bytes(c.varint()));
    } else {
      REQUIRE(key == (2 << 3 | 5));  // simple_value, fixed32
      std::string b = c.bytes(4);
      float v;
      std::memcpy(&v, b.data(), 4);
      scalar = v;
    }
  }
  REQUIRE(scalar.has_value() != image.has_value());  // exactly one kind per value
  if (scalar) e.values.emplace_back(tag, *scalar);
  if (image) {
    image->tag = tag;
    e.images.push_back(*image);
  }
}

inline Event parse_event(const std::string& msg) {
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
          parse_value(s.bytes(s.varint()), e);
        }
        break;
      }
      case 7 << 3 | 2: {  // Event.session_log: SessionLog { SessionStatus status = 1; }
        std::string log = c.bytes(c.varint());
        Cursor l{log};
        REQUIRE(l.varint() == (1 << 3 | 0));
        e.session_status = static_cast<int64_t>(l.varint());
        REQUIRE(l.pos == log.size());
        break;
      }
      default:
        FAIL("unexpected Event field key " << key);
    }
  }
  return e;
}

inline std::vector<Event> read_events(const std::string& path) {
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
    out.back().raw = payload;
    pos += 12 + len + 4;
  }
  return out;
}

}  // namespace sagan::testing
