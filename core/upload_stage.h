// Tensors on their way from the host into fixed device buffers, sent ahead
// of their use: add() each destination with its source, send() packs the
// sources into one host block and starts one copy to the device without
// waiting for it, and take() queues the copies into the destinations behind
// the device's earlier work. On CUDA the copy runs on a copy stream of its
// own (Backend::make_uploader), so the trainer sends iteration i+1's inputs
// while the device runs iteration i, and a step graph replays on buffers
// whose addresses never change.
//
//   UploadStage stage(Device::cuda(0));
//   stage.add(buf.images, batch.images, DType::F32);  // makes buf.images on first use
//   stage.send();   // host work only
//   ... queue other work ...
//   stage.take();   // buf.images holds the batch for work queued after this
#pragma once
#include <memory>
#include <vector>

#include "sagan/core/backend.h"

namespace sagan {

class UploadStage {
 public:
  explicit UploadStage(Device device) : device_(device) {}
  UploadStage(const UploadStage&) = delete;
  UploadStage& operator=(const UploadStage&) = delete;

  // Queues src (any device and dtype; converted to dtype) for dst. src is
  // read by send(), not copied here when it is a contiguous host tensor of
  // that dtype: leave it unchanged until then. dst is made, empty on the stage's device, when it is undefined or
  // of another shape or dtype; returns true then (anything made over the
  // old buffer, a view or a captured graph, must be remade). A defined dst
  // must be a contiguous tensor of the stage's device.
  bool add(Tensor& dst, const Tensor& src, DType dtype);
  // Packs what was added and starts its copy. What an earlier send had not
  // given to take() is dropped.
  void send();
  // Queues the copies of the last send into their destinations (nothing
  // when there is none).
  void take();
  // Forgets what was added and what was sent and not taken.
  void discard();

 private:
  struct Entry {
    Tensor dst, src;  // src: contiguous, on the host, in dst's dtype
    size_t offset;
  };
  Device device_;
  std::unique_ptr<Uploader> uploader_;
  std::vector<Entry> added_;
  size_t added_bytes_ = 0;
  std::vector<Entry> sent_;  // holds the destinations alive until take()
};

}  // namespace sagan
