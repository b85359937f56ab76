// TensorBoard event files, written without TensorFlow or protobuf: a file of
// TFRecords (uint64 length, masked CRC32C of the length, payload, masked
// CRC32C of the payload), each payload a hand-encoded tensorflow.Event. The
// first record carries file_version "brain.Event:2"; each scalar is an Event
// with wall_time, step and a Summary holding one {tag, simple_value}; each
// image an Event whose Summary holds one {tag, Image {height, width,
// colorspace, encoded_image_string = PNG}} (TensorBoard's Images tab).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "sagan/core/io/image.h"

namespace sagan::io {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); crc32c("123456789")
// is 0xE3069283. `crc` continues a previous value.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// TFRecord's masking: rotate right by 15 and add 0xA282EAD8.
uint32_t masked_crc32c(const void* data, size_t size);

class SummaryWriter {
 public:
  // Creates logdir (and parents) and a new file
  // events.out.tfevents.<unix time>.<hostname> in it (".<n>" appended if a
  // file of that name already exists, so two writers never share a file).
  explicit SummaryWriter(const std::string& logdir);
  ~SummaryWriter();
  SummaryWriter(const SummaryWriter&) = delete;
  SummaryWriter& operator=(const SummaryWriter&) = delete;

  // wall_time < 0 means now (seconds since the epoch).
  void add_scalar(const std::string& tag, float value, int64_t step, double wall_time = -1.0);
  // An 8-bit gray (C = 1) or RGB (C = 3) image, stored PNG-encoded: sample
  // grids, attention-map figures (make_image_grid, models/attention_maps.h).
  void add_image(const std::string& tag, const Image& image, int64_t step, double wall_time = -1.0);
  // A SessionLog START event at `step`: TensorBoard then discards the events
  // of earlier files in the directory with step >= `step` (its purge on
  // restart), so a resumed run that logs those steps again shows each once.
  void add_session_start(int64_t step, double wall_time = -1.0);
  // Pushes buffered records to the OS so TensorBoard sees them.
  void flush();
  // flush() and fsync: the records survive a power cut (before a checkpoint,
  // so that a run resumed from it has every earlier step's events).
  void sync();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace sagan::io
