// Sync-free regions: stretches of host code that may queue work on a device
// but must never wait for it. Reading a value back (Tensor::item, to_vector,
// to_float_vector, to_int_vector) makes the host wait until the device has
// produced it, which drains the GPU's queue; inside a CUDA graph capture it
// is not allowed at all. The training step (models/trainer.h) runs its D and
// G updates in such a region and reads all its numbers once, at the end.
//
// A read inside a region throws, naming what was read and the region, on
// every backend: the CPU tests find such reads although the CPU backend has
// nothing to wait for.
#pragma once
#include <cstdint>

namespace sagan {

class SyncFreeScope {
 public:
  // `what` names the region in errors ("Trainer::step"); it must outlive the scope.
  explicit SyncFreeScope(const char* what);
  ~SyncFreeScope();
  SyncFreeScope(const SyncFreeScope&) = delete;
  SyncFreeScope& operator=(const SyncFreeScope&) = delete;

 private:
  const char* outer_;
};

// True inside a SyncFreeScope on this thread.
bool sync_free_active();
// Called by every host read of tensor values: throws inside a region,
// naming `op` (the read, e.g. "Tensor::item") and the region; otherwise counts it.
void note_host_read(const char* op);
// Host reads on this thread so far (outside regions), for tests that count them.
int64_t host_read_count();

}  // namespace sagan
