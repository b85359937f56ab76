// The CUDA general pooling kernels (kernels/cuda/pool2d_kernels.cuh) on the
// CPU emulator against the CPU backend (kernels/cpu/pool2d.cpp): k x k max
// and average pools (padding counted or not) over a sweep of kernel, stride
// and padding on odd planes, windows that overlap (stride < kernel) and
// skip inputs (stride > kernel), ties and NaN in max windows; adaptive
// average pooling down, up and to 1 x 1. Forward and backward, both dtypes,
// bit for bit: the kernels add the same terms in the CPU's order.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/bitwise.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/pool2d_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

// 64 threads, fewer than the cells of all but the smallest outputs: the
// grid-stride loops take several turns.
constexpr unsigned kPool2dGrid = 2, kPool2dThreads = 32;

// x (2, 3, H, W) with a tie and a NaN when asked.
Tensor input(int64_t H, int64_t W, DType dt, bool specials) {
  Rng gen(static_cast<uint64_t>(H * 100 + W));
  Tensor x = Tensor::randn({2, 3, H, W}, gen, dt);
  if (!specials) return x;
  std::vector<double> v = x.to_vector();
  v[0] = v[1] = 5.0;                            // a tie in plane 0's first window
  v[static_cast<size_t>(H * W + W + 1)] = NAN;  // a NaN in plane 1
  return Tensor::from_vector(v, x.shape(), dt);
}

// Runs the forward and backward kernels with the given axes and compares
// them with the CPU's calls.
template <class T, bool kMax, class Axis, class CpuForward, class CpuBackward>
void compare(const Tensor& x, int64_t Ho, int64_t Wo, Axis rows, Axis cols, int64_t fixed_count, DType dt,
             const CpuForward& cpu_forward, const CpuBackward& cpu_backward) {
  const Shape out_shape{x.size(0), x.size(1), Ho, Wo};
  Tensor want = Tensor::empty(out_shape, dt), out = Tensor::full(out_shape, NAN, dt);
  cpu_forward(x, want);
  cuda_emu::launch(cu::pool2d_kernel<T, kMax, Axis>, dim3(kPool2dGrid), dim3(kPool2dThreads), 0,
                   static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), rows, cols, fixed_count, Ho,
                   Wo, out.numel());
  CHECK(testing::bitwise_equal(out, want));  // forward
  Rng gen(31);
  const Tensor gy = Tensor::randn(out_shape, gen, dt);
  Tensor want_gx = Tensor::empty(x.shape(), dt), gx = Tensor::full(x.shape(), NAN, dt);
  cpu_backward(x, gy, want_gx);
  cuda_emu::launch(cu::pool2d_backward_kernel<T, kMax, Axis>, dim3(kPool2dGrid), dim3(kPool2dThreads), 0,
                   static_cast<const T*>(x.raw_data()), static_cast<const T*>(gy.raw_data()),
                   static_cast<T*>(gx.raw_data()), rows, cols, fixed_count, Ho, Wo, gx.numel());
  CHECK(testing::bitwise_equal(gx, want_gx));  // backward
}

template <class T>
void check_windows(DType dt) {
  Backend& cpu = backend_for(Device::cpu());
  for (const int64_t k : {1, 2, 3, 5})
    for (const int64_t s : {1, 2, 3})
      for (int64_t p = 0; p <= k / 2; ++p)
        for (const auto [H, W] : {std::pair<int64_t, int64_t>{7, 9}, {5, 6}, {11, 8}}) {
          if (H + 2 * p < k || W + 2 * p < k) continue;
          const int64_t Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
          for (const PoolMode mode : {PoolMode::Max, PoolMode::AvgIncludePad, PoolMode::AvgExcludePad}) {
            const Pool2dGeom g{mode, k, s, p};
            INFO(dtype_name(dt) << " mode " << static_cast<int>(mode) << " k " << k << " s " << s << " p " << p
                                << " on " << H << "x" << W);
            const Tensor x = input(H, W, dt, mode == PoolMode::Max);
            const cu::WindowAxis rows{k, s, p, H}, cols{k, s, p, W};
            const int64_t fixed = mode == PoolMode::AvgIncludePad ? k * k : 0;
            auto fwd = [&](const Tensor& in, Tensor& out) { cpu.pool2d(in, out, g); };
            auto bwd = [&](const Tensor& in, const Tensor& gy, Tensor& gx) { cpu.pool2d_backward(in, gy, gx, g); };
            if (mode == PoolMode::Max)
              compare<T, true>(x, Ho, Wo, rows, cols, fixed, dt, fwd, bwd);
            else
              compare<T, false>(x, Ho, Wo, rows, cols, fixed, dt, fwd, bwd);
          }
        }
}

template <class T>
void check_adaptive(DType dt) {
  Backend& cpu = backend_for(Device::cpu());
  // Down with uneven cells, the global average, up (cells overlap), Inception's 8x8 -> 1x1.
  for (const auto [H, W, Ho, Wo] :
       {std::array<int64_t, 4>{7, 9, 3, 4}, {7, 9, 1, 1}, {5, 4, 9, 11}, {8, 8, 1, 1}, {13, 6, 5, 4}}) {
    INFO(dtype_name(dt) << " adaptive " << H << "x" << W << " -> " << Ho << "x" << Wo);
    const Tensor x = input(H, W, dt, false);
    auto fwd = [&](const Tensor& in, Tensor& out) { cpu.adaptive_avg_pool2d(in, out); };
    auto bwd = [&](const Tensor&, const Tensor& gy, Tensor& gx) { cpu.adaptive_avg_pool2d_backward(gy, gx); };
    compare<T, false>(x, Ho, Wo, cu::AdaptiveAxis{H, Ho}, cu::AdaptiveAxis{W, Wo}, 0, dt, fwd, bwd);
  }
}
}  // namespace

TEST_CASE("emulated CUDA k x k pools match the CPU backend bit for bit", "[pool2d][cuda_emu]") {
  check_windows<double>(DType::F64);
  check_windows<float>(DType::F32);
}

TEST_CASE("emulated CUDA adaptive average pooling matches the CPU backend bit for bit", "[pool2d][cuda_emu]") {
  check_adaptive<double>(DType::F64);
  check_adaptive<float>(DType::F32);
}
