// The convolution's kernels around cuDNN (kernels/cuda/conv2d_kernels.cuh,
// bf16_convert.cuh) on the CPU emulator: the bias add against the CPU backend's broadcast add
// (strided bias, both dtypes), and the bf16 round trip of --precision bf16
// against core/reduced_precision.h's round to nearest even, with the values
// where rounding goes wrong: ties both ways, the carry into the exponent,
// overflow to infinity, subnormals, infinities and NaN.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "sagan/core/ops.h"
#include "sagan/core/reduced_precision.h"
#include "sagan/core/rng.h"
#include "tests/support/assertions.h"
#include "tests/support/reference_round.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/conv2d_kernels.cuh"
// clang-format on

namespace {

using namespace sagan;
namespace cu = sagan::cuda;

constexpr unsigned kConvGrid = 3;  // fewer threads than elements: the grid-stride loops wrap

template <class T>
void check_bias(DType dt) {
  INFO(dtype_name(dt));
  Rng gen(31);
  const int64_t B = 3, C = 5, H = 7, W = 9;
  const Tensor y = Tensor::randn({B, C, H, W}, gen, dt);
  const Tensor bias = Tensor::randn({C, 2}, gen, dt).select(1, 1);  // stride 2
  REQUIRE(bias.strides()[0] == 2);
  Tensor got = y.clone();
  cuda_emu::launch(cu::add_bias_kernel<T>, dim3(kConvGrid), dim3(cu::kBlock), 0, static_cast<T*>(got.raw_data()),
                   static_cast<const T*>(bias.raw_data()), bias.strides()[0], C, H * W, got.numel());
  CHECK_CLOSE(got, y + bias.reshape({1, C, 1, 1}), 0.0, 0.0);
}

TEST_CASE("cuda conv2d kernels: the bias add", "[conv2d][cuda_emu]") {
  check_bias<float>(DType::F32);
  check_bias<double>(DType::F64);
}

TEST_CASE("cuda conv2d kernels: float32 to bf16 and back rounds to nearest even", "[conv2d][cuda_emu]") {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {
      0.0f,
      -0.0f,
      1.0f,
      -2.5f,
      inf,
      -inf,
      std::nanf(""),
      std::bit_cast<float>(0x3f808000u),  // halfway between 1 and the next bf16, even below: down
      std::bit_cast<float>(0x3f818000u),  // halfway, odd below: up
      std::bit_cast<float>(0x3f808001u),  // just above halfway: up
      std::bit_cast<float>(0x3fffffffu),  // rounds up into the next exponent: 2
      std::bit_cast<float>(0x7f7fffffu),  // the largest float: past the largest bf16, to infinity
      std::bit_cast<float>(0x00012345u),  // a subnormal
  };
  Rng gen(32);
  const std::vector<double> r = Tensor::randn({500}, gen, DType::F64).to_vector();
  for (double v : r) x.push_back(static_cast<float>(v * 1e3));
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> bits(x.size(), 0xdead);
  std::vector<float> back(x.size(), -1.0f);
  cuda_emu::launch(cu::to_bf16_kernel, dim3(kConvGrid), dim3(32), 0, x.data(), bits.data(), n);
  cuda_emu::launch(cu::from_bf16_kernel, dim3(kConvGrid), dim3(32), 0, bits.data(), back.data(), n);
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("x = " << x[i] << " (bits " << std::hex << std::bit_cast<uint32_t>(x[i]) << ")");
    // The slow reference, not round_bf16: under the emulator the kernel's
    // conversion is round_bf16 itself.
    const float want = std::isinf(x[i]) ? x[i] : sagan::testing::reference_bf16(x[i]);
    if (std::isnan(x[i])) {
      CHECK(bits[i] == 0x7fff);
      CHECK(std::isnan(back[i]));
    } else {
      CHECK(std::bit_cast<uint32_t>(back[i]) == std::bit_cast<uint32_t>(want));
    }
  }
  CHECK(back[7] == 1.0f);
  CHECK(back[8] == std::bit_cast<float>(0x3f820000u));
  CHECK(back[9] == std::bit_cast<float>(0x3f810000u));
  CHECK(back[10] == 2.0f);
  CHECK(back[11] == inf);
}

}  // namespace
