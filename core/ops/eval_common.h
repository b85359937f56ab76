// Shared by the evaluation front ends (core/ops_eval.h): the run-on-the-CPU
// fallback for other devices, forward and backward.
#pragma once
#include <vector>

#include "core/autograd.h"
#include "core/ops/common.h"

namespace sagan::detail {

// The CPU kernels want contiguous tensors in CPU memory.
inline Tensor cpu_contiguous(const Tensor& t) { return t.detach().to(Device{}).contiguous(); }

// Runs `kernel(out_cpu)` on a CPU tensor of `shape` and returns it on `device`:
// the whole fallback for a CUDA input is this copy out and back.
template <class Kernel>
Tensor run_on_cpu(const Shape& shape, DType dtype, Device device, Kernel&& kernel) {
  Tensor out = Tensor::empty(shape, dtype, Device{});
  if (out.numel() > 0) kernel(out);
  return device == Device{} ? out : out.to(device);
}

}  // namespace sagan::detail
