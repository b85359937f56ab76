// Reference-counted device memory. A Storage owns one allocation from its
// device's backend; tensors are views (shape, strides, offset) into it.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "sagan/core/dtype.h"

namespace sagan {

struct StorageImpl {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  // Bumped by every in-place change through the engine (Tensor::fill_ and
  // copy_, the optimiser and EMA updates, the power iteration's u and v):
  // autograd compares it with the version a tensor was saved at.
  std::atomic<uint64_t> version{0};
  StorageImpl(size_t nbytes, Device device);
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;
};

using Storage = std::shared_ptr<StorageImpl>;

inline Storage make_storage(size_t nbytes, Device device) { return std::make_shared<StorageImpl>(nbytes, device); }

}  // namespace sagan
