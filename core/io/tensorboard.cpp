// TFRecord framing and a minimal protobuf encoder for tensorflow.Event
// (scalar and image summaries, SessionLog START).
#include "sagan/core/io/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "sagan/core/error.h"
#include "sagan/core/io/atomic_file.h"

namespace sagan::io {

namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

// ---- protobuf wire format: key = field << 3 | wire type.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire) { put_varint(out, static_cast<uint64_t>(field) << 3 | wire); }
template <class T>
void put_fixed(std::string& out, int field, T v) {
  put_key(out, field, sizeof(T) == 8 ? 1 : 5);
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian host, as protobuf wants
  out.append(b, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3; Summary summary = 5; } }
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_fixed(e, 1, wall_time);
  put_key(e, 2, 0);
  put_varint(e, static_cast<uint64_t>(step));  // int64: two's complement, 10 bytes if negative
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

SummaryWriter::SummaryWriter(const std::string& logdir) {
  std::error_code ec;
  std::filesystem::create_directories(logdir, ec);
  SAGAN_CHECK(!ec, "SummaryWriter: cannot create log directory {}: {}", logdir, ec.message());
  char host[256] = "localhost";
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof(host) - 1] = '\0';
  double t0 = now_seconds();
  std::string base = fmt::format("{}/events.out.tfevents.{}.{}", logdir, static_cast<int64_t>(t0), host);
  // O_EXCL: a second writer started in the same second gets its own file.
  for (int n = 0; n < 1000 && !file_; ++n) {
    std::string p = n == 0 ? base : fmt::format("{}.{}", base, n);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      SAGAN_CHECK(errno == EEXIST, "SummaryWriter: cannot create {}: {}", p, std::strerror(errno));
      continue;
    }
    file_ = ::fdopen(fd, "wb");
    SAGAN_CHECK(file_ != nullptr, "SummaryWriter: fdopen {}: {}", p, std::strerror(errno));
    path_ = p;
  }
  SAGAN_CHECK(file_ != nullptr, "SummaryWriter: {}: too many event files with this name", base);
  std::string e = event_header(t0, 0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
  flush();
}

SummaryWriter::~SummaryWriter() {
  if (file_) std::fclose(file_);
}

void SummaryWriter::write_record(const std::string& payload) {
  uint64_t len = payload.size();
  char head[12];
  std::memcpy(head, &len, 8);
  uint32_t len_crc = masked_crc32c(head, 8);
  std::memcpy(head + 8, &len_crc, 4);
  uint32_t data_crc = masked_crc32c(payload.data(), payload.size());
  write_all(file_, head, 12, path_);
  write_all(file_, payload.data(), payload.size(), path_);
  write_all(file_, &data_crc, 4, path_);
}

void SummaryWriter::add_scalar(const std::string& tag, float value, int64_t step, double wall_time) {
  // Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
  std::string v;
  put_bytes(v, 1, tag);
  put_fixed(v, 2, value);
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e = event_header(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void SummaryWriter::add_image(const std::string& tag, const Image& image, int64_t step, double wall_time) {
  SAGAN_CHECK(image.channels == 1 || image.channels == 3,
              "SummaryWriter::add_image '{}': images must have 1 or 3 channels, got {}", tag, image.channels);
  // Summary.Image { int32 height = 1; int32 width = 2; int32 colorspace = 3;
  // bytes encoded_image_string = 4; }  colorspace: 1 grayscale, 3 RGB.
  std::vector<uint8_t> png = encode_png(image, fmt::format("{} (TensorBoard image '{}')", path_, tag));
  std::string img;
  put_key(img, 1, 0);
  put_varint(img, static_cast<uint64_t>(image.height));
  put_key(img, 2, 0);
  put_varint(img, static_cast<uint64_t>(image.width));
  put_key(img, 3, 0);
  put_varint(img, static_cast<uint64_t>(image.channels));
  put_bytes(img, 4, std::string(png.begin(), png.end()));
  // Summary { repeated Value value = 1; }  Value { string tag = 1; Image image = 4; }
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 4, img);
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e = event_header(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void SummaryWriter::add_session_start(int64_t step, double wall_time) {
  // Event { SessionLog session_log = 7; }  SessionLog { SessionStatus status = 1; }  START = 1.
  // (Field 6 is the deprecated LogMessage, which readers ignore: with it,
  // TensorBoard's Python reader kept an undone step beside its redo. The
  // fast Rust reader ignores SessionLog too, and keeps the last value of a
  // tag logged again at a step.)
  std::string log;
  put_key(log, 1, 0);
  put_varint(log, 1);
  std::string e = event_header(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(e, 7, log);
  write_record(e);
}

void SummaryWriter::flush() {
  SAGAN_CHECK(std::fflush(file_) == 0, "SummaryWriter: {}: flush failed: {}", path_, std::strerror(errno));
}

void SummaryWriter::sync() {
  flush();
  SAGAN_CHECK(::fsync(::fileno(file_)) == 0, "SummaryWriter: {}: fsync failed: {}", path_, std::strerror(errno));
}

}  // namespace sagan::io
