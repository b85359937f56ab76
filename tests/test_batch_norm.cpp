// batch_norm: forward, running statistics and input gradients against
// PyTorch goldens (float64 and float32), hand-computed running-stat updates,
// the parallel kernel path against a composite of generic ops, and error
// messages. Gradient checks (training and eval, odd shapes) and CUDA parity:
// tests/ops/op_cases.cpp.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "tests/golden/norm_pool_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
// (x - mean) / sqrt(biased var + eps) per channel, built from generic ops.
Tensor composite_bn(const Tensor& x, double eps) {
  Tensor mu = mean(x, {0, 2, 3}, true);
  Tensor var = mean(square(x - mu), {0, 2, 3}, true);
  return (x - mu) / sqrt(var + eps);
}
}  // namespace

TEST_CASE("batch_norm training matches PyTorch: output, running stats, input grad", "[batch_norm][golden]") {
  const auto& c = norm_pool_case("batch_norm_train");
  const double mom = c.at("momentum"), eps = c.at("eps");
  for (DType dt : {DType::F64, DType::F32}) {
    INFO("dtype " << dtype_name(dt));
    const double rtol = dt == DType::F64 ? 1e-10 : 1e-4, atol = dt == DType::F64 ? 1e-12 : 1e-5;
    Tensor x = golden_tensor(c, "x", dt, true);
    Tensor rm = golden_tensor(c, "running_mean0", dt), rv = golden_tensor(c, "running_var0", dt);
    Tensor y = batch_norm(x, rm, rv, true, mom, eps);
    REQUIRE_CLOSE(y, golden_values(c, "out"), rtol, atol);
    REQUIRE_CLOSE(rm, golden_values(c, "running_mean"), rtol, atol);
    REQUIRE_CLOSE(rv, golden_values(c, "running_var"), rtol, atol);
    REQUIRE_CLOSE(input_grad(x, y, golden_tensor(c, "gy", dt)), golden_values(c, "gx"), rtol, atol);
  }
}

TEST_CASE("batch_norm eval matches PyTorch and leaves running stats alone", "[batch_norm][golden]") {
  const auto& c = norm_pool_case("batch_norm_eval");
  const double eps = c.at("eps");
  for (DType dt : {DType::F64, DType::F32}) {
    INFO("dtype " << dtype_name(dt));
    const double rtol = dt == DType::F64 ? 1e-10 : 1e-4, atol = dt == DType::F64 ? 1e-12 : 1e-5;
    Tensor x = golden_tensor(c, "x", dt, true);
    Tensor rm = golden_tensor(c, "running_mean", dt), rv = golden_tensor(c, "running_var", dt);
    Tensor y = batch_norm(x, rm, rv, false, 0.1, eps);
    REQUIRE_CLOSE(y, golden_values(c, "out"), rtol, atol);
    REQUIRE_CLOSE(input_grad(x, y, golden_tensor(c, "gy", dt)), golden_values(c, "gx"), rtol, atol);
    REQUIRE(rm.to_vector() == golden_tensor(c, "running_mean", dt).to_vector());
    REQUIRE(rv.to_vector() == golden_tensor(c, "running_var", dt).to_vector());
  }
}

TEST_CASE("batch_norm on (N, C) input without running stats matches PyTorch", "[batch_norm][golden]") {
  const auto& c = norm_pool_case("batch_norm_2d");
  Tensor x = golden_tensor(c, "x", DType::F64, true);
  Tensor y = batch_norm(x, Tensor(), Tensor(), true, 0.1, c.at("eps"));
  REQUIRE(y.shape() == Shape{5, 3});
  REQUIRE_CLOSE(y, golden_values(c, "out"), 1e-10, 1e-12);
  REQUIRE_CLOSE(input_grad(x, y, golden_tensor(c, "gy")), golden_values(c, "gx"), 1e-10, 1e-12);
}

TEST_CASE("batch_norm running stats use the unbiased variance (by hand)", "[batch_norm]") {
  // Channel 0 holds {1, 3, 5, 7}: mean 4, biased var 5, unbiased var 20/3.
  // Channel 1 holds {2, 2, 2, 6}: mean 3, biased var 3, unbiased var 4.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 3, 2, 2, 5, 7, 2, 6}, {2, 2, 1, 2}, DType::F64);
  Tensor rm = Tensor::from_vector(std::vector<double>{10, -10}, {2}, DType::F64);
  Tensor rv = Tensor::from_vector(std::vector<double>{1, 2}, {2}, DType::F64);
  const double m = 0.25;
  Tensor y = batch_norm(x, rm, rv, true, m, 1e-5);
  CHECK(rm.to_vector()[0] == Approx(0.75 * 10 + 0.25 * 4));
  CHECK(rm.to_vector()[1] == Approx(0.75 * -10 + 0.25 * 3));
  CHECK(rv.to_vector()[0] == Approx(0.75 * 1 + 0.25 * 20.0 / 3.0).epsilon(1e-12));
  CHECK(rv.to_vector()[1] == Approx(0.75 * 2 + 0.25 * 4.0).epsilon(1e-12));
  // Normalised with the biased variance: (1 - 4) / sqrt(5 + eps).
  CHECK(y.to_vector()[0] == Approx(-3.0 / std::sqrt(5.0 + 1e-5)).epsilon(1e-12));
  CHECK(y.to_vector()[3] == Approx(-1.0 / std::sqrt(3.0 + 1e-5)).epsilon(1e-12));
  // Another step blends from the updated values.
  batch_norm(x, rm, rv, true, m, 1e-5);
  CHECK(rm.to_vector()[0] == Approx(0.75 * (0.75 * 10 + 1) + 1));
  // Running views (a strided slice of a larger buffer) are updated in place.
  Tensor buf = Tensor::zeros({2, 2}, DType::F64);
  Tensor rm_view = buf.select(1, 0), rv_view = buf.select(1, 1);
  rv_view.fill_(1.0);
  batch_norm(x, rm_view, rv_view, true, 1.0, 1e-5);
  CHECK(buf.to_vector()[0] == Approx(4.0));
  CHECK(buf.to_vector()[1] == Approx(20.0 / 3.0));
  CHECK(buf.to_vector()[2] == Approx(3.0));
  CHECK(buf.to_vector()[3] == Approx(4.0));
}

TEST_CASE("batch_norm parallel path matches a composite of generic ops", "[batch_norm]") {
  // 4*8*32*33 elements is over the kernels' parallel threshold.
  Rng gen(12);
  Tensor x = randn64({4, 8, 32, 33}, gen);
  {
    NoGradGuard ng;
    x = add(mul(x, 3.0), 5.0).detach();
  }
  x.set_requires_grad(true);
  Tensor y = batch_norm(x, Tensor(), Tensor(), true, 0.1, 1e-5);
  Tensor w = Tensor::randn(x.shape(), gen, DType::F64);
  Tensor gx = input_grad(x, y, w);
  Tensor yr = composite_bn(x, 1e-5);
  REQUIRE_CLOSE(y, yr, 1e-10, 1e-12);
  REQUIRE_CLOSE(gx, input_grad(x, yr, w), 1e-8, 1e-10);
}

TEST_CASE("batch_norm float32 statistics stay accurate for large means", "[batch_norm]") {
  // float32 x = 1000 + N(0, 1): a float accumulator of 8192 such values
  // would lose about 3 digits of the variance; double accumulation keeps it.
  Rng gen(13);
  Tensor noise = Tensor::randn({8, 2, 32, 32}, gen, DType::F64);
  Tensor x32 = add(noise, 1000.0).to(DType::F32);
  Tensor y = batch_norm(x32, Tensor(), Tensor(), true, 0.1, 1e-5);
  Tensor ref = composite_bn(x32.to(DType::F64), 1e-5);
  REQUIRE_CLOSE(y.to(DType::F64), ref, 1e-4, 1e-4);
}

TEST_CASE("batch_norm float32 running variance stays accurate far below eps", "[batch_norm]") {
  // A near-constant channel (std 1e-4, var 1e-8, eps 1e-5): recovering the
  // variance from a float invstd as 1/invstd^2 - eps cancels 3 of float's 7
  // digits (0.4% error); the kernel's own biased variance keeps them all.
  Rng gen(14);
  Tensor noise = Tensor::randn({16, 3, 8, 8}, gen, DType::F64);
  Tensor x32 = add(mul(noise, 1e-4), 0.5).to(DType::F32);
  Tensor rm = Tensor::zeros({3}, DType::F32), rv = Tensor::ones({3}, DType::F32);
  batch_norm(x32, rm, rv, true, /*momentum=*/1.0, 1e-5);
  // float64 reference of the unbiased variance of the float32 data.
  Tensor x64 = x32.to(DType::F64);
  const std::vector<double> xs = x64.to_vector(), got = rv.to_vector();
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0, ss = 0, n = 0;
    for (int64_t b = 0; b < 16; ++b)
      for (int64_t i = 0; i < 64; ++i) s += xs[static_cast<size_t>((b * 3 + c) * 64 + i)], n += 1;
    const double mu = s / n;
    for (int64_t b = 0; b < 16; ++b)
      for (int64_t i = 0; i < 64; ++i) {
        const double d = xs[static_cast<size_t>((b * 3 + c) * 64 + i)] - mu;
        ss += d * d;
      }
    const double want = ss / (n - 1);
    INFO("channel " << c << ": want " << want << ", got " << got[static_cast<size_t>(c)]);
    CHECK(got[static_cast<size_t>(c)] == Approx(want).epsilon(1e-6));
  }
}
TEST_CASE("batch_norm errors name the op and shapes", "[batch_norm][errors]") {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  REQUIRE_THROWS_WITH(batch_norm(x, Tensor::zeros({4}), Tensor::ones({4}), true),
                      Catch::Contains("batch_norm") && Catch::Contains("running_mean") && Catch::Contains("[4]") &&
                          Catch::Contains("[2, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(batch_norm(x, Tensor::zeros({3}, DType::F64), Tensor::ones({3}, DType::F64), true),
                      Catch::Contains("batch_norm") && Catch::Contains("dtype"));
  REQUIRE_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), false),
                      Catch::Contains("batch_norm") && Catch::Contains("running_mean") && Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(
      batch_norm(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), true),
      Catch::Contains("batch_norm") && Catch::Contains("more than 1 value") && Catch::Contains("[1, 3, 1, 1]"));
  REQUIRE_THROWS_WITH(batch_norm(Tensor::zeros({6}), Tensor(), Tensor(), true),
                      Catch::Contains("batch_norm") && Catch::Contains("[6]"));
  REQUIRE_THROWS_WITH(batch_norm(Tensor::zeros({2, 3}, DType::I64), Tensor(), Tensor(), true),
                      Catch::Contains("batch_norm") && Catch::Contains("int64"));
  // A refused buffer leaves the other one as it was (the mean used to be
  // written before the variance's copy_ failed).
  Rng gen(3);
  Tensor xr = Tensor::randn({4, 3, 2, 2}, gen);
  Tensor rm = Tensor::zeros({3});
  REQUIRE_THROWS_WITH(batch_norm(xr, rm, Tensor::ones({1}).expand({3}), true),
                      Catch::Contains("batch_norm") && Catch::Contains("running_var") && Catch::Contains("expanded"));
  CHECK(rm.to_vector() == std::vector<double>{0, 0, 0});
  Tensor rv_grad = Tensor::ones({3});
  rv_grad.set_requires_grad(true);
  REQUIRE_THROWS_WITH(batch_norm(xr, rm, rv_grad, true), Catch::Contains("batch_norm") &&
                                                             Catch::Contains("running_var") &&
                                                             Catch::Contains("requires grad"));
  CHECK(rm.to_vector() == std::vector<double>{0, 0, 0});
  // Eval with one value per channel is fine: it uses the running stats.
  CHECK_NOTHROW(batch_norm(Tensor::zeros({1, 3, 1, 1}), Tensor::zeros({3}), Tensor::ones({3}), false));
}
