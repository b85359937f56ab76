// Catch2 assertions over gradcheck() and allclose() that log the worst
// element when they fail, and the input gradient the golden tests compare.
#pragma once
#include <catch2/catch.hpp>

#include "tests/support/gradcheck.h"

#define REQUIRE_GRADCHECK(fn, ...)                            \
  do {                                                        \
    auto r_ = ::sagan::testing::gradcheck(fn, {__VA_ARGS__}); \
    INFO(r_.message);                                         \
    REQUIRE(r_.ok);                                           \
  } while (0)

#define REQUIRE_CLOSE(a, b, rtol, atol)                     \
  do {                                                      \
    auto c_ = ::sagan::testing::allclose(a, b, rtol, atol); \
    INFO(#a << ": " << c_.message);                         \
    REQUIRE(c_.ok);                                         \
  } while (0)

// The same, not stopping the test case.
#define CHECK_CLOSE(a, b, rtol, atol)                       \
  do {                                                      \
    auto c_ = ::sagan::testing::allclose(a, b, rtol, atol); \
    INFO(#a << ": " << c_.message);                         \
    CHECK(c_.ok);                                           \
  } while (0)

namespace sagan::testing {

// Gradient of sum(y * gy) with respect to the leaf x; x's old gradient is
// dropped first so that repeated calls do not accumulate.
inline Tensor input_grad(const Tensor& x, const Tensor& y, const Tensor& gy) {
  x.set_grad(Tensor());
  y.backward(gy);
  return x.grad();
}

}  // namespace sagan::testing
