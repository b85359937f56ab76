// Bitwise equality of two tensors on any device: the measure of
// repeatability (resumed vs uninterrupted runs, replayed vs plain steps,
// deterministic kernels run twice). NaNs with the same bits are equal,
// -0 and +0 are not.
#pragma once
#include <cstring>

#include "sagan/core/tensor.h"

namespace sagan::testing {

// Same dtype, shape and bytes (copied to the host first).
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ha = a.contiguous().to(Device::cpu()), hb = b.contiguous().to(Device::cpu());
  return std::memcmp(ha.raw_data(), hb.raw_data(), static_cast<size_t>(ha.numel()) * dtype_size(ha.dtype())) == 0;
}

}  // namespace sagan::testing
