// tests/data/conv_matmul_goldens.json, written by make_conv_matmul_goldens.py:
// float64 inputs, PyTorch's outputs, and the gradients of sum(y * gy) for
// matmul, bmm, linear, conv2d.
#pragma once
#include "tests/support/golden.h"

namespace sagan::testing {
inline const Json& conv_matmul_case(const std::string& name) { return golden_case("conv_matmul_goldens.json", name); }
}  // namespace sagan::testing
