// The CUDA batch-norm kernels (kernels/cuda/batch_norm_kernels.cuh) on the
// CPU emulator against the CPU backend: statistics, normalisation (with
// strided mean and invstd, as a conditional BN passes them) and the
// backward, on odd sizes, channels beyond the grid (blocks stride over
// channels), a channel's elements beyond one block, both dtypes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/backend.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "kernels/cuda/batch_norm_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

template <class T>
const T* cp(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* mp(Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

template <class T>
void check(DType dt, const Shape& shape, unsigned grid, double tol) {
  INFO(dtype_name(dt) << " x " << shape_str(shape) << ", grid " << grid);
  Rng gen(9);
  const int64_t B = shape[0], C = shape[1];
  int64_t hw = 1;
  for (size_t i = 2; i < shape.size(); ++i) hw *= shape[i];
  const Tensor x = add(mul(Tensor::randn(shape, gen, dt), 3.0), 1.5);
  const Tensor gy = Tensor::randn(shape, gen, dt);
  const double eps = 1e-5;
  Backend& cpu = backend_for(Device::cpu());

  Tensor mean = Tensor::full({C}, NAN, dt), invstd = Tensor::full({C}, NAN, dt);
  Tensor want_mean = Tensor::empty({C}, dt), want_invstd = Tensor::empty({C}, dt);
  cpu.batch_norm_stats(x, want_mean, want_invstd, eps);
  cuda_emu::launch(cu::bn_stats_kernel<T>, dim3(grid), dim3(cu::kBlock), 0, cp<T>(x), mp<T>(mean), mp<T>(invstd), B,
                   C, hw, eps);
  CHECK_CLOSE(mean, want_mean, 0, tol);
  CHECK_CLOSE(invstd, want_invstd, 0, tol);

  // Strided statistics: every other element of a wider buffer.
  Tensor mean_buf = Tensor::full({2 * C}, NAN, dt), invstd_buf = Tensor::full({2 * C}, NAN, dt);
  Tensor mean_s = mean_buf.slice(0, 0, 2 * C, 2), invstd_s = invstd_buf.slice(0, 0, 2 * C, 2);
  mean_s.copy_(want_mean);
  invstd_s.copy_(want_invstd);
  Tensor out = Tensor::full(shape, NAN, dt), want_out = Tensor::empty(shape, dt);
  cpu.batch_norm_normalize(x, want_mean, want_invstd, want_out);
  const int64_t total = x.numel();
  cuda_emu::launch(cu::bn_normalize_kernel<T>, dim3(std::min<unsigned>(grid, cu::blocks_for(total))),
                   dim3(cu::kBlock), 0, cp<T>(x), cp<T>(mean_s), int64_t{2}, cp<T>(invstd_s), int64_t{2}, mp<T>(out), C,
                   hw, total);
  CHECK_CLOSE(out, want_out, 0, tol);

  Tensor gx = Tensor::full(shape, NAN, dt), want_gx = Tensor::empty(shape, dt);
  cpu.batch_norm_backward(x, want_mean, want_invstd, gy, want_gx);
  cuda_emu::launch(cu::bn_backward_kernel<T>, dim3(grid), dim3(cu::kBlock), 0, cp<T>(x), cp<T>(mean_s), int64_t{2},
                   cp<T>(invstd_s), int64_t{2}, cp<T>(gy), mp<T>(gx), B, C, hw);
  CHECK_CLOSE(gx, want_gx, 0, tol);
}
}  // namespace

TEST_CASE("emulated CUDA batch norm matches the CPU backend: statistics, normalise, backward", "[batch_norm][cuda_emu]") {
  // (B, C, H, W): 7 channels over a grid of 3 blocks; 5 x 9 x 11 = 495
  // elements a channel, two passes of 256 threads. Then 1 x 1 images (as a
  // 2-d input reaches the kernels) and one block for all channels.
  check<double>(DType::F64, {5, 7, 9, 11}, 3, 1e-12);
  check<float>(DType::F32, {5, 7, 9, 11}, 3, 1e-5);
  check<double>(DType::F64, {33, 6, 1, 1}, 2, 1e-12);
  check<float>(DType::F32, {3, 2, 37, 41}, 1, 1e-5);
}
