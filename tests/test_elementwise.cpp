// Elementwise ops: forward values by hand and error messages. Gradient checks
// (broadcasting, odd shapes) and CUDA parity: tests/ops/op_cases.cpp.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/assertions.h"
#include "tests/support/omp_threads.h"

using namespace sagan;
using namespace sagan::testing;

TEST_CASE("binary ops broadcast and match hand-computed values", "[elementwise]") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64);
  Tensor b = Tensor::from_vector(std::vector<double>{10, 20, 30}, {3}, DType::F64);
  CHECK(add(a, b).to_vector() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK(sub(a, b).to_vector() == std::vector<double>{-9, -18, -27, -6, -15, -24});
  CHECK(mul(a, b).to_vector() == std::vector<double>{10, 40, 90, 40, 100, 180});
  Tensor c = Tensor::from_vector(std::vector<double>{2, 4}, {2, 1}, DType::F64);
  CHECK(div(a, c).to_vector() == std::vector<double>{0.5, 1, 1.5, 1, 1.25, 1.5});
  CHECK(maximum(a, Tensor::scalar(3.5, DType::F64)).to_vector() == std::vector<double>{3.5, 3.5, 3.5, 4, 5, 6});
  CHECK((a * 2.0 + 1.0).to_vector() == std::vector<double>{3, 5, 7, 9, 11, 13});
  CHECK((1.0 - a).to_vector() == std::vector<double>{0, -1, -2, -3, -4, -5});
}

TEST_CASE("maximum and minimum send the gradient of a tie to their first argument", "[elementwise]") {
  // Ties at infinity (inf - inf is NaN) and a NaN on either side count as
  // ties too.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (bool is_max : {true, false}) {
    INFO((is_max ? "maximum" : "minimum"));
    const double big = is_max ? inf : -inf;
    Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, big, nan, 1}, {6}, DType::F64).set_requires_grad(true);
    Tensor b = Tensor::from_vector(std::vector<double>{1, 5, 0, big, 1, nan}, {6}, DType::F64).set_requires_grad(true);
    sum(is_max ? maximum(a, b) : minimum(a, b)).backward();
    CHECK(a.grad().to_vector() ==
          (is_max ? std::vector<double>{1, 0, 1, 1, 1, 1} : std::vector<double>{1, 1, 0, 1, 1, 1}));
    CHECK(b.grad().to_vector() ==
          (is_max ? std::vector<double>{0, 1, 0, 0, 0, 0} : std::vector<double>{0, 0, 1, 0, 0, 0}));
  }
}

TEST_CASE("an infinite gradient reaches only the active side of relu, leaky_relu, abs, maximum, minimum",
          "[elementwise]") {
  // PyTorch selects: the inactive side gets 0, not inf * 0 = NaN.
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor g = Tensor::from_vector(std::vector<double>{inf, -inf, inf}, {3}, DType::F64);
  auto grad_of = [&](auto f, std::vector<double> xv) {
    Tensor x = Tensor::from_vector(xv, {3}, DType::F64).set_requires_grad(true);
    f(x).backward(g);
    return x.grad().to_vector();
  };
  CHECK(grad_of([](const Tensor& x) { return relu(x); }, {-1, 2, 0}) == std::vector<double>{0, -inf, 0});
  CHECK(grad_of([](const Tensor& x) { return abs(x); }, {-1, 0, 3}) == std::vector<double>{-inf, 0, inf});
  for (bool is_max : {true, false}) {
    INFO((is_max ? "maximum" : "minimum"));
    Tensor a = Tensor::from_vector(std::vector<double>{1, 3, 2}, {3}, DType::F64).set_requires_grad(true);
    Tensor b = Tensor::from_vector(std::vector<double>{2, 2, 2}, {3}, DType::F64).set_requires_grad(true);
    (is_max ? maximum(a, b) : minimum(a, b)).backward(g);
    // Max picks b, a, a (tie); min picks a, b, a (tie).
    CHECK(a.grad().to_vector() == (is_max ? std::vector<double>{0, -inf, inf} : std::vector<double>{inf, 0, inf}));
    CHECK(b.grad().to_vector() == (is_max ? std::vector<double>{inf, 0, 0} : std::vector<double>{0, -inf, 0}));
  }
}

TEST_CASE("relu passes NaN on, forward and backward, as PyTorch does", "[elementwise]") {
  // A NaN activation must reach the losses, where the NaN guard looks:
  // relu(NaN) = 0 hid a diverged layer from it (and its BN statistics went
  // NaN unseen). PyTorch: relu(NaN) = NaN, threshold_backward passes g.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {DType::F64, DType::F32}) {
    INFO(dtype_name(dt));
    Tensor x = Tensor::from_vector(std::vector<double>{nan, -1, 2, 0}, {4}, dt).set_requires_grad(true);
    Tensor y = relu(x);
    const std::vector<double> yv = y.to_vector();
    CHECK(std::isnan(yv[0]));
    CHECK(yv[1] == 0);
    CHECK(yv[2] == 2);
    CHECK(yv[3] == 0);
    CHECK(std::isnan(sum(y).item()));
    y.backward(Tensor::from_vector(std::vector<double>{3, 3, 3, 3}, {4}, dt));
    CHECK(x.grad().to_vector() == std::vector<double>{3, 0, 3, 0});
  }
}

TEST_CASE("maximum and minimum give NaN for a NaN on either side, in either order", "[elementwise]") {
  const double nan = std::nan("");
  Tensor a = Tensor::from_vector(std::vector<double>{nan, 1, nan}, {3}, DType::F64);
  Tensor b = Tensor::from_vector(std::vector<double>{1, nan, nan}, {3}, DType::F64);
  for (const Tensor& y : {maximum(a, b), maximum(b, a), minimum(a, b), minimum(b, a)})
    for (double v : y.to_vector()) CHECK(std::isnan(v));
}

TEST_CASE("pow's exponent gradient is 0 where the base is 0 (b >= 0), not NaN", "[elementwise]") {
  Tensor a = Tensor::from_vector(std::vector<double>{0, 2, 0, 3, 0}, {5}, DType::F64).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<double>{2, 2, 0, 0.5, -1}, {5}, DType::F64).set_requires_grad(true);
  sum(pow(a, b)).backward();
  const std::vector<double> gb = b.grad().to_vector();
  CHECK(gb[0] == 0);
  CHECK(gb[1] == Approx(4 * std::log(2.0)));
  CHECK(gb[2] == 0);  // 0^0 = 1: PyTorch's 0 too
  CHECK(gb[3] == Approx(std::sqrt(3.0) * std::log(3.0)));
  CHECK(gb[4] == -std::numeric_limits<double>::infinity());  // 0^-1 log 0 = inf * -inf, as in PyTorch
  const std::vector<double> ga = a.grad().to_vector();
  CHECK(ga[0] == 0);  // 2 * 0^1
  CHECK(ga[1] == Approx(4.0));
  CHECK(ga[2] == 0);  // b = 0: 0, not 0 * 0^-1 = NaN
  CHECK(ga[3] == Approx(0.5 / std::sqrt(3.0)));
  CHECK(ga[4] == -std::numeric_limits<double>::infinity());  // -1 * 0^-2
}

TEST_CASE("unary forward values", "[elementwise]") {
  Tensor x = Tensor::from_vector(std::vector<double>{-2, -0.5, 0, 0.5, 30}, {5}, DType::F64);
  auto r = relu(x).to_vector();
  CHECK(r == std::vector<double>{0, 0, 0, 0.5, 30});
  auto l = leaky_relu(x, 0.1).to_vector();
  CHECK(l[0] == Approx(-0.2));
  auto sp = softplus(x).to_vector();
  CHECK(sp[0] == Approx(std::log1p(std::exp(-2.0))));
  CHECK(sp[4] == Approx(30.0));
  auto sg = sigmoid(x).to_vector();
  CHECK(sg[2] == Approx(0.5));
  CHECK(sg[0] == Approx(1.0 / (1.0 + std::exp(2.0))));
}

TEST_CASE("softplus returns x only above 20 (PyTorch's threshold)", "[elementwise][softplus]") {
  // log(1 + e^x) exceeds x by about e^-x: 7e-3 at x = 5, 6e-9 at x = 19. A
  // threshold below 20 returns x there; the gradchecks (x < 1.5 and x > 20)
  // and the values above (x = 30) do not see it.
  Tensor x = Tensor::from_vector(std::vector<double>{2.5, 5, 10, 19}, {4}, DType::F64);
  const std::vector<double> y = softplus(x).to_vector();
  for (size_t i = 0; i < y.size(); ++i) {
    const double xi = x.to_vector()[i];
    INFO("x = " << xi);
    CHECK(y[i] == Approx(std::log1p(std::exp(xi))).epsilon(1e-14));
  }
  CHECK(softplus(Tensor::from_vector(std::vector<double>{5}, {1}, DType::F32)).item() ==
        Approx(std::log1p(std::exp(5.0))).epsilon(1e-6));
}

TEST_CASE("pow(x, 0) has gradient 0 everywhere, x = 0 included", "[elementwise][pow_scalar]") {
  // 0 * x^-1 is 0 * inf = NaN at x = 0: the exponent 0 must be special-cased,
  // as PyTorch's pow_backward does (zeros). The gradchecks use 2.5 only.
  for (DType dt : {DType::F64, DType::F32}) {
    INFO(dtype_name(dt));
    Tensor x = Tensor::from_vector(std::vector<double>{0, 2, -1.5}, {3}, dt).set_requires_grad(true);
    Tensor y = pow(x, 0.0);
    CHECK(y.to_vector() == std::vector<double>{1, 1, 1});
    y.backward(Tensor::from_vector(std::vector<double>{1, -2, 3}, {3}, dt));
    CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0});
  }
}

TEST_CASE("elementwise errors name the op and shapes", "[elementwise][errors]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  Tensor i = Tensor::zeros({2, 3}, DType::I64);
  REQUIRE_THROWS_WITH(relu(i), Catch::Contains("relu") && Catch::Contains("int64"));
  REQUIRE_THROWS_WITH(mul(a, Tensor::zeros({2, 3}, DType::F64)), Catch::Contains("mul") && Catch::Contains("dtype"));
}

TEST_CASE("long rows are shared among threads in pieces, every element written once", "[elementwise][cpu_threads]") {
  // A contiguous tensor is one row for the CPU's strided loops: 1, 2 or 3
  // rows of odd lengths, contiguous, broadcast and strided (every second
  // element), each compared with a loop over its elements, on 3 threads
  // (pieces with a ragged last one) whatever the machine has.
  const testing::OmpThreads three(3);
  Rng gen(5);
  for (const int64_t rows : {1, 2, 3}) {
    const int64_t n = 100003 / rows;
    Tensor x = Tensor::randn({rows, n}, gen), b = Tensor::randn({n}, gen);
    const Tensor y = add(relu(x), b);
    const std::vector<double> xv = x.to_vector(), bv = b.to_vector(), yv = y.to_vector();
    REQUIRE(yv.size() == static_cast<size_t>(rows * n));
    for (size_t i = 0; i < yv.size(); ++i)
      REQUIRE(yv[i] == static_cast<double>(std::max(static_cast<float>(xv[i]), 0.0f) +
                                           static_cast<float>(bv[i % static_cast<size_t>(n)])));
    const Tensor strided = Tensor::randn({rows, 2 * n}, gen).slice(1, 0, 2 * n, 2);
    const std::vector<double> sv = strided.to_vector(), tv = tanh(strided).to_vector();
    for (size_t i = 0; i < tv.size(); ++i) REQUIRE(tv[i] == static_cast<double>(std::tanh(static_cast<float>(sv[i]))));
  }
}
