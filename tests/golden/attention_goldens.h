// tests/data/attention_goldens.json, written by make_attention_goldens.py:
// PyTorch's values for attention, spectral-norm power iteration and Adam steps.
#pragma once
#include "tests/support/golden.h"

namespace sagan::testing {
inline const Json& attention_case(const std::string& name) { return golden_case("attention_goldens.json", name); }
}  // namespace sagan::testing
