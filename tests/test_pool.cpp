// avg_pool2x2, max_pool2x2 and upsample_nearest2x: values and gradients
// against PyTorch goldens (odd sizes, ties), hand-computed windows, the
// parallel kernel path against strided-slice composites, and error messages
// (max_pool2d / avg_pool2d's empty planes too).
// Gradient checks and CUDA parity: tests/ops/op_cases.cpp.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/core/ops_vision.h"
#include "tests/golden/norm_pool_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

// Bitwise-equal values and equal shapes.
#define REQUIRE_SAME_VALUES(a, b)              \
  do {                                         \
    Tensor a_ = (a), b_ = (b);                 \
    REQUIRE(a_.shape() == b_.shape());         \
    REQUIRE(a_.to_vector() == b_.to_vector()); \
  } while (0)

namespace {
using UnaryFn = Tensor (*)(const Tensor&);

// Checks op(x) and its input gradient against a golden case, in float64 and
// float32.
void check_golden(const char* name, UnaryFn op) {
  const auto& c = norm_pool_case(name);
  for (DType dt : {DType::F64, DType::F32}) {
    INFO(name << " " << dtype_name(dt));
    const double rtol = dt == DType::F64 ? 1e-12 : 1e-5, atol = dt == DType::F64 ? 1e-14 : 1e-6;
    Tensor x = golden_tensor(c, "x", dt, true);
    Tensor y = op(x);
    REQUIRE(y.shape() == c.at("out_shape").get<Shape>());
    REQUIRE_CLOSE(y, golden_values(c, "out"), rtol, atol);
    REQUIRE_CLOSE(input_grad(x, y, golden_tensor(c, "gy", dt)), golden_values(c, "gx"), rtol, atol);
  }
}

// x[:, :, r::2, s::2] cropped to the pooled size: one corner of every window.
Tensor corner(const Tensor& x, int64_t r, int64_t s) {
  const int64_t ho = x.shape()[2] / 2, wo = x.shape()[3] / 2;
  return x.slice(2, r, r + 2 * ho, 2).slice(3, s, s + 2 * wo, 2);
}
}  // namespace

TEST_CASE("pooling and upsampling match PyTorch, values and gradients", "[pool][golden]") {
  check_golden("avg_pool2x2", avg_pool2x2);
  check_golden("max_pool2x2", max_pool2x2);
  check_golden("max_pool2x2_ties", max_pool2x2);
  check_golden("upsample_nearest2x", upsample_nearest2x);
}

TEST_CASE("pooling windows by hand: floor, first maximum on ties", "[pool]") {
  // 1x1x3x5: one 2x2 row of windows (cols 0-1, 2-3); row 2 and col 4 drop.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 4, 4, 0, 9,  //
                                                     4, 2, 4, 1, 9,  //
                                                     9, 9, 9, 9, 9},
                                 {1, 1, 3, 5}, DType::F64);
  x.set_requires_grad(true);
  Tensor a = avg_pool2x2(x);
  CHECK(a.shape() == Shape{1, 1, 1, 2});
  CHECK(a.to_vector() == std::vector<double>{2.75, 2.25});
  Tensor m = max_pool2x2(x);
  CHECK(m.to_vector() == std::vector<double>{4, 4});
  // Window 0 has 4 at (0,1) and (1,0): the first in row-major order wins.
  // Window 1 has 4 at (0,2) and (1,2): again the top one.
  Tensor g = input_grad(x, m, Tensor::from_vector(std::vector<double>{10, 20}, {1, 1, 1, 2}, DType::F64));
  CHECK(g.to_vector() == std::vector<double>{0, 10, 20, 0, 0,  //
                                             0, 0, 0, 0, 0,    //
                                             0, 0, 0, 0, 0});
  Tensor ga = input_grad(x, a, Tensor::from_vector(std::vector<double>{4, 8}, {1, 1, 1, 2}, DType::F64));
  CHECK(ga.to_vector() == std::vector<double>{1, 1, 2, 2, 0,  //
                                              1, 1, 2, 2, 0,  //
                                              0, 0, 0, 0, 0});
  // A NaN in a window propagates to the output; its gradient goes to the
  // first NaN cell only.
  Tensor xn = Tensor::from_vector(std::vector<double>{1, NAN, NAN, 3}, {1, 1, 2, 2}, DType::F64);
  xn.set_requires_grad(true);
  Tensor mn = max_pool2x2(xn);
  CHECK(std::isnan(mn.item()));
  CHECK(input_grad(xn, mn, Tensor::ones({1, 1, 1, 1}, DType::F64)).to_vector() == std::vector<double>{0, 1, 0, 0});
  Tensor u = upsample_nearest2x(Tensor::from_vector(std::vector<double>{1, 2, 3}, {1, 1, 1, 3}, DType::F64));
  CHECK(u.shape() == Shape{1, 1, 2, 6});
  CHECK(u.to_vector() == std::vector<double>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
}

TEST_CASE("pooling parallel path matches strided-slice composites", "[pool]") {
  // 2*16*33*65 elements: over the kernels' parallel threshold, odd H and W.
  Rng gen(22);
  Tensor x = randn64({2, 16, 33, 65}, gen);
  Tensor c00 = corner(x, 0, 0), c01 = corner(x, 0, 1), c10 = corner(x, 1, 0), c11 = corner(x, 1, 1);
  REQUIRE_CLOSE(avg_pool2x2(x), mul(add(add(c00, c01), add(c10, c11)), 0.25), 1e-14, 1e-15);
  REQUIRE_SAME_VALUES(max_pool2x2(x), maximum(maximum(c00, c01), maximum(c10, c11)));
  Tensor u = upsample_nearest2x(x);
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t s = 0; s < 2; ++s) REQUIRE_SAME_VALUES(u.slice(2, r, u.shape()[2], 2).slice(3, s, u.shape()[3], 2), x);
  // Backward: the same gradient through the kernels and through composites.
  Tensor w = Tensor::randn({2, 16, 16, 32}, gen, DType::F64);
  Tensor ga = input_grad(x, avg_pool2x2(x), w);
  Tensor gr =
      input_grad(x, mul(add(add(corner(x, 0, 0), corner(x, 0, 1)), add(corner(x, 1, 0), corner(x, 1, 1))), 0.25), w);
  REQUIRE_CLOSE(ga, gr, 1e-14, 1e-15);
  Tensor gm = input_grad(x, max_pool2x2(x), w);
  Tensor gmr =
      input_grad(x, maximum(maximum(corner(x, 0, 0), corner(x, 0, 1)), maximum(corner(x, 1, 0), corner(x, 1, 1))), w);
  REQUIRE_SAME_VALUES(gm, gmr);
  Tensor wu = Tensor::randn(u.shape(), gen, DType::F64);
  Tensor gu = input_grad(x, upsample_nearest2x(x), wu);
  Tensor gur = add(add(corner(wu, 0, 0), corner(wu, 0, 1)), add(corner(wu, 1, 0), corner(wu, 1, 1)));
  REQUIRE_CLOSE(gu, gur, 1e-14, 1e-15);
  // Average-pooling a nearest upsample is exactly the identity.
  REQUIRE_SAME_VALUES(avg_pool2x2(upsample_nearest2x(x)), x);
}

TEST_CASE("pooling errors name the op and shapes", "[pool][errors]") {
  REQUIRE_THROWS_WITH(avg_pool2x2(Tensor::zeros({3, 4, 4})),
                      Catch::Contains("avg_pool2x2") && Catch::Contains("NCHW") && Catch::Contains("[3, 4, 4]"));
  REQUIRE_THROWS_WITH(max_pool2x2(Tensor::zeros({1, 2, 1, 6})),
                      Catch::Contains("max_pool2x2") && Catch::Contains("[1, 2, 1, 6]") && Catch::Contains("2x2"));
  REQUIRE_THROWS_WITH(upsample_nearest2x(Tensor::zeros({2, 2})),
                      Catch::Contains("upsample_nearest2x") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(avg_pool2x2(Tensor::zeros({1, 1, 2, 2}, DType::I64)),
                      Catch::Contains("avg_pool2x2") && Catch::Contains("int64"));
  // Padding would make a window out of an empty plane (it read x[0] of no
  // storage); a plane of zero height or width is refused.
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({1, 1, 0, 4}), 2, 1, 1),
                      Catch::Contains("max_pool2d") && Catch::Contains("[1, 1, 0, 4]") && Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(avg_pool2d(Tensor::zeros({1, 1, 3, 4}).slice(3, 4, 4), 2, 1, 1, false),
                      Catch::Contains("avg_pool2d") && Catch::Contains("[1, 1, 3, 0]") && Catch::Contains("empty"));
}
