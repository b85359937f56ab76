// Helpers of the CUDA parity suite: kernels and ops run on the CPU backend in
// float64 and on the CUDA backend (float64, float32, TF32) from the same
// random inputs; CUDA outputs are poisoned with NaN first so an element a
// kernel forgets to write fails, and NaN never passes a comparison. The op
// registry's parity (tests/ops/op_parity.h) shares the comparison and the
// tolerances.
#pragma once
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/rng.h"
#include "sagan/core/tensor.h"
#include "sagan/kernels/cuda/device_info.h"
#include "sagan/kernels/cuda/settings.h"
#include "tests/ops/op_parity.h"
#include "tests/support/bitwise.h"

namespace sagan::cudatest {

inline Backend& cpu() { return backend_for(Device::cpu()); }
inline Backend& gpu() { return backend_for(Device::cuda(0)); }
inline Device dev() { return Device::cuda(0); }

// Relative error bounds of the suite (tests/ops/op_parity.h), and TF32's.
using optest::kTolF32;
using optest::kTolF64;
using optest::tol_for;
constexpr double kTolTF32 = 1e-3;
// cuDNN's TF32 convolutions may take Winograd- or FFT-type algorithms that
// round transformed operands: PyTorch's TF32 convolution tests allow 5e-3.
constexpr double kTolTF32Conv = 5e-3;

// One input on both sides: `cpu` is float64 on the CPU holding exactly the
// values `gpu` holds (rounded to the GPU dtype first).
struct Pair {
  Tensor cpu, gpu;
};

// Uniform in [lo, hi) (never exactly zero when lo > 0 or the draw is continuous).
Pair uniform(const Shape& shape, double lo, double hi, Rng& gen, DType gpu_dtype);
// N(0, scale^2).
Pair normal(const Shape& shape, Rng& gen, DType gpu_dtype, double scale = 1.0);
// Any host values (e.g. with deliberate ties).
Pair from_values(const std::vector<double>& values, const Shape& shape, DType gpu_dtype);
// The same view on both sides.
Pair view(const Pair& p, const std::function<Tensor(const Tensor&)>& f);

// Fresh output tensors filled with NaN (int64: a sentinel).
Tensor poisoned(const Shape& shape, DType dtype, Device device);
// One output on both sides: cpu float64, gpu of the given dtype, both poisoned.
Pair outputs(const Shape& shape, DType gpu_dtype);

using optest::compare;

// The dtypes every parity test runs in.
inline std::vector<DType> float_dtypes() { return {DType::F64, DType::F32}; }

// Scoped TF32 switch for the TF32 checks.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : prev_(cuda_tf32_enabled()) { set_cuda_tf32(on); }
  ~Tf32Scope() { set_cuda_tf32(prev_); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool prev_;
};

// Scoped deterministic-mode switch (kernels/cuda/settings.h).
class DeterministicGuard {
 public:
  explicit DeterministicGuard(bool on) : prev_(cuda_deterministic()) { set_cuda_deterministic(on); }
  ~DeterministicGuard() { set_cuda_deterministic(prev_); }
  DeterministicGuard(const DeterministicGuard&) = delete;
  DeterministicGuard& operator=(const DeterministicGuard&) = delete;

 private:
  bool prev_;
};

// ||got - want|| / ||want|| over all elements (infinity if got holds a
// non-finite value): the measure for reduced-precision (TF32, bf16) results.
double normwise(const Tensor& got, const Tensor& want);

// Same dtype, shape and bytes (copied to the host): bitwise repeatability.
using testing::bitwise_equal;

// Scoped choice of the CUDA attention path (fused is the default).
class AttentionImplScope {
 public:
  explicit AttentionImplScope(AttentionImpl impl) : prev_(cuda_attention_impl()) { set_cuda_attention_impl(impl); }
  ~AttentionImplScope() { set_cuda_attention_impl(prev_); }
  AttentionImplScope(const AttentionImplScope&) = delete;
  AttentionImplScope& operator=(const AttentionImplScope&) = delete;

 private:
  AttentionImpl prev_;
};
inline std::vector<AttentionImpl> attention_impls() { return {AttentionImpl::Fused, AttentionImpl::Unfused}; }

// Allocations (cudaMalloc calls plus cache hits) the device's caching
// allocator served while f ran: tells which kernel path ran where the paths
// allocate different workspaces.
int64_t allocations_during(const std::function<void()>& f, int device = 0);

// Leaves NaN-filled blocks of these sizes (`copies` of each) on the top of
// the allocator's free lists, so that the next allocations of those size
// classes, e.g. the outputs an op front end allocates itself, start as NaN:
// poisoning for results the test cannot pre-allocate.
void poison_allocator(const std::vector<Shape>& shapes, DType dtype, int copies = 2);

}  // namespace sagan::cudatest
