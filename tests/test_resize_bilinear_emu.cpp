// The CUDA bilinear resampling kernels (kernels/cuda/resize_bilinear_kernels.cuh)
// on the CPU emulator against the CPU backend
// (kernels/cpu/resize_bilinear.cpp): up by large and small ratios (the
// evaluation's 32 -> 299), down, to and from one pixel, and unchanged; forward
// and the gathered backward, whose range of outputs per input must find every
// output that reaches it, the clamped edges included. Both dtypes, within a
// few units in the last place (the compiler may fuse the weighted sums
// differently in the two copies).
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/resize_bilinear_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

constexpr unsigned kResizeGrid = 3;

template <class T>
void check_resize(DType dt, double tol) {
  Backend& cpu = backend_for(Device::cpu());
  // (H, W) -> (Ho, Wo): up and down per axis, large ratios, one pixel, unchanged, down both ways.
  const std::array<std::array<int64_t, 4>, 7> sizes = {
      {{5, 7, 9, 4}, {5, 7, 3, 13}, {4, 3, 41, 29}, {1, 1, 3, 2}, {6, 5, 1, 1}, {7, 9, 7, 9}, {13, 11, 4, 5}}};
  for (const auto [H, W, Ho, Wo] : sizes) {
    INFO(dtype_name(dt) << " " << H << "x" << W << " -> " << Ho << "x" << Wo);
    Rng gen(static_cast<uint64_t>(H * 1000 + W * 100 + Ho * 10 + Wo));
    const Tensor x = Tensor::randn({2, 3, H, W}, gen, dt), gy = Tensor::randn({2, 3, Ho, Wo}, gen, dt);
    const cu::BilinearAxis rows{H, Ho}, cols{W, Wo};

    Tensor want = Tensor::empty(gy.shape(), dt), out = Tensor::full(gy.shape(), NAN, dt);
    cpu.resize_bilinear(x, want);
    cuda_emu::launch(cu::resize_bilinear_kernel<T>, dim3(kResizeGrid), dim3(cu::kBlock), 0,
                     static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), rows, cols, out.numel());
    CHECK_CLOSE(out, want, tol, tol);

    Tensor want_gx = Tensor::empty(x.shape(), dt), gx = Tensor::full(x.shape(), NAN, dt);
    cpu.resize_bilinear_backward(gy, want_gx);
    cuda_emu::launch(cu::resize_bilinear_backward_kernel<T>, dim3(kResizeGrid), dim3(cu::kBlock), 0,
                     static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), rows, cols, gx.numel());
    CHECK_CLOSE(gx, want_gx, tol, tol);
  }
}
}  // namespace

TEST_CASE("emulated CUDA bilinear resize matches the CPU backend", "[resize][cuda_emu]") {
  check_resize<double>(DType::F64, 1e-13);
  check_resize<float>(DType::F32, 1e-5);
}

// Every output's four taps are found by the backward's range: with a gradient
// at a single output, the gathered gradient is that output's weights times
// it, exactly where the CPU's scatter puts them. An infinite gradient makes
// even a zero weight show (0 x inf is NaN, on the CPU too): the outputs whose
// source coordinate is clamped to 0 reach input 1 with weight 0.
TEST_CASE("emulated CUDA bilinear backward finds every output that reaches an input", "[resize][cuda_emu]") {
  Backend& cpu = backend_for(Device::cpu());
  const int64_t H = 3, W = 32, Ho = 2, Wo = 299;
  const cu::BilinearAxis rows{H, Ho}, cols{W, Wo};
  for (const double value : {1.0, static_cast<double>(INFINITY)})
    for (const int64_t o : {int64_t{0}, int64_t{1}, int64_t{4}, int64_t{150}, Wo - 5, Wo - 1}) {
      INFO("gradient " << value << " at output column " << o);
      std::vector<double> g(static_cast<size_t>(Ho * Wo), 0.0);
      g[static_cast<size_t>(Wo + o)] = value;
      const Tensor gy = Tensor::from_vector(g, {1, 1, Ho, Wo}, DType::F64);
      Tensor want = Tensor::empty({1, 1, H, W}, DType::F64), gx = Tensor::full({1, 1, H, W}, NAN, DType::F64);
      cpu.resize_bilinear_backward(gy, want);
      cuda_emu::launch(cu::resize_bilinear_backward_kernel<double>, dim3(kResizeGrid), dim3(cu::kBlock), 0,
                       static_cast<const double*>(gy.raw_data()), static_cast<double*>(gx.raw_data()), rows, cols,
                       gx.numel());
      const std::vector<double> a = gx.to_vector(), b = want.to_vector();
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("input " << i);
        CHECK((std::isnan(b[i]) ? std::isnan(a[i]) : a[i] == b[i]));
      }
    }
}
