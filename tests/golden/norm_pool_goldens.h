// tests/data/norm_pool_goldens.json, written by make_norm_pool_goldens.py:
// PyTorch's float64 inputs, outputs and input gradients for batch_norm,
// pooling, upsampling and indexing.
#pragma once
#include "tests/support/golden.h"

namespace sagan::testing {
inline const Json& norm_pool_case(const std::string& name) { return golden_case("norm_pool_goldens.json", name); }
}  // namespace sagan::testing
