// The CUDA 2x2 pooling and nearest 2x upsampling kernels
// (kernels/cuda/pool_kernels.cuh) on the CPU emulator against the CPU
// backend: average and max pooling with their gradients on odd sizes (the
// dropped last row and column get zero gradient), ties and NaN in a max
// window, upsampling and its gradient; both dtypes, every D and G block's
// resampling.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/pool_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

constexpr unsigned kPoolGrid = 3;

void check_same(const Tensor& got, const Tensor& want) {
  const std::vector<double> a = got.to_vector(), b = want.to_vector();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i);
    if (std::isnan(b[i]))
      CHECK(std::isnan(a[i]));
    else
      CHECK(a[i] == b[i]);  // the same arithmetic in the same order
  }
}

template <class T>
void check_pool(DType dt) {
  INFO(dtype_name(dt));
  Rng gen(12);
  const int64_t B = 2, C = 3, H = 7, W = 9, Ho = H / 2, Wo = W / 2;
  Tensor x = Tensor::randn({B, C, H, W}, gen, dt);
  {  // a tie and a NaN in max windows
    std::vector<double> v = x.to_vector();
    v[0] = v[1] = 5.0;        // window (0, 0) of plane 0: tie between cells 0 and 1
    v[2 * W + 3] = NAN;       // window (1, 1) of plane 0: cell 2 is NaN
    x = Tensor::from_vector(v, x.shape(), dt);
  }
  const Tensor gy = Tensor::randn({B, C, Ho, Wo}, gen, dt);
  Backend& cpu = backend_for(Device::cpu());
  const int64_t out_total = B * C * Ho * Wo, in_total = x.numel();
  for (const bool is_max : {false, true}) {
    INFO((is_max ? "max" : "avg"));
    Tensor want = Tensor::empty({B, C, Ho, Wo}, dt), out = Tensor::full({B, C, Ho, Wo}, NAN, dt);
    if (is_max)
      cpu.max_pool2x2(x, want);
    else
      cpu.avg_pool2x2(x, want);
    auto fwd = is_max ? cu::pool_kernel<T, true> : cu::pool_kernel<T, false>;
    cuda_emu::launch(fwd, dim3(kPoolGrid), dim3(cu::kBlock), 0, static_cast<const T*>(x.raw_data()),
                     static_cast<T*>(out.raw_data()), H, W, Ho, Wo, out_total);
    check_same(out, want);

    Tensor want_gx = Tensor::empty(x.shape(), dt), gx = Tensor::full(x.shape(), NAN, dt);
    if (is_max)
      cpu.max_pool2x2_backward(x, gy, want_gx);
    else
      cpu.avg_pool2x2_backward(gy, want_gx);
    auto bwd = is_max ? cu::pool_backward_kernel<T, true> : cu::pool_backward_kernel<T, false>;
    cuda_emu::launch(bwd, dim3(kPoolGrid), dim3(cu::kBlock), 0, static_cast<const T*>(x.raw_data()),
                     static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), H, W, Ho, Wo, in_total);
    check_same(gx, want_gx);
  }

  // Upsampling (H, W) -> (2H, 2W) and back.
  Tensor want_up = Tensor::empty({B, C, 2 * H, 2 * W}, dt), up = Tensor::full({B, C, 2 * H, 2 * W}, NAN, dt);
  cpu.upsample_nearest2x(x, want_up);
  cuda_emu::launch(cu::upsample_kernel<T>, dim3(kPoolGrid), dim3(cu::kBlock), 0, static_cast<const T*>(x.raw_data()),
                   static_cast<T*>(up.raw_data()), H, W, up.numel());
  check_same(up, want_up);
  const Tensor gup = Tensor::randn({B, C, 2 * H, 2 * W}, gen, dt);
  Tensor want_gx = Tensor::empty(x.shape(), dt), gx = Tensor::full(x.shape(), NAN, dt);
  cpu.upsample_nearest2x_backward(gup, want_gx);
  cuda_emu::launch(cu::upsample_backward_kernel<T>, dim3(kPoolGrid), dim3(cu::kBlock), 0,
                   static_cast<const T*>(gup.raw_data()), static_cast<T*>(gx.raw_data()), H, W, in_total);
  check_same(gx, want_gx);
}
}  // namespace

TEST_CASE("emulated CUDA 2x2 pools and nearest upsampling match the CPU backend", "[pool][cuda_emu]") {
  check_pool<double>(DType::F64);
  check_pool<float>(DType::F32);
}
