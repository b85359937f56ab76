// Device-vs-CPU parity of one registry case (tests/ops/op_cases.h): the case
// runs on the CPU in float64 and on `device` in float64 or float32 from the
// same values; outputs and input gradients must agree. Used by the CUDA
// suite (tests/cuda/test_ops_parity.cpp) and, through the CPU fallback of a
// stand-in device, by the CPU suite (tests/test_ops.cpp).
#pragma once
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "tests/ops/op_cases.h"

namespace sagan::optest {

// Relative error bounds against the float64 CPU result:
// |got - want| / max(1, |want|) (values are O(1) by construction).
constexpr double kTolF64 = 1e-10;
constexpr double kTolF32 = 1e-5;
inline double tol_for(DType t) { return t == DType::F64 ? kTolF64 : kTolF32; }

struct Compare {
  bool ok = true;
  double worst = 0.0;
  std::string message;
};
// got (any device/dtype) against want (CPU); NaN/inf in got fail unless want
// has the same non-finite value; tol 0 demands exact equality.
Compare compare(const Tensor& got, const Tensor& want, double tol);

// Called before each device call with the shapes the call will allocate for
// its results (the output's, and each input's for its gradient), so that
// they start as NaN: an element a kernel forgets to write fails.
using Poison = std::function<void(const std::vector<Shape>& shapes, DType dtype)>;

// The device runs the case twice (the second call reuses cached plans and
// workspaces) and once backward from a random upstream gradient.
void require_parity(const OpEntry& entry, const OpCase& c, Device device, DType dtype, const Poison& poison);

}  // namespace sagan::optest

// REQUIRE_PARITY(got, want, tol): the worst element is in the log.
#define REQUIRE_PARITY(got, want, tol)                        \
  do {                                                        \
    auto c_ = ::sagan::optest::compare((got), (want), (tol)); \
    INFO(#got << " vs " << #want << ": " << c_.message);      \
    REQUIRE(c_.ok);                                           \
  } while (0)
