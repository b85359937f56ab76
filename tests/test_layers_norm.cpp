// BatchNorm2d and ConditionalBatchNorm2d: values by hand (batch statistics,
// running statistics, per-class gain and bias), float64 gradient checks and
// error messages.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/layers/batch_norm.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
void assign(nn::Module& m, const std::string& name, const std::vector<double>& v) {
  NoGradGuard ng;
  Tensor t = m.tensor(name);
  t.copy_(Tensor::from_vector(v, t.shape(), DType::F64));
}

// Per-channel batch mean and biased variance of x (B, C, H, W), by hand.
void channel_stats(const std::vector<double>& x, int64_t B, int64_t C, int64_t HW, std::vector<double>& mean,
                   std::vector<double>& var) {
  mean.assign(static_cast<size_t>(C), 0.0);
  var.assign(static_cast<size_t>(C), 0.0);
  double n = static_cast<double>(B * HW);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) mean[c] += x[static_cast<size_t>((b * C + c) * HW + i)] / n;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        double d = x[static_cast<size_t>((b * C + c) * HW + i)] - mean[c];
        var[c] += d * d / n;
      }
}
}  // namespace

TEST_CASE("BatchNorm2d: batch statistics, running statistics and eval, by hand", "[layers][norm]") {
  const int64_t B = 2, C = 3, H = 2, W = 3, HW = H * W;
  Rng gen(1);
  Tensor x = randn64({B, C, H, W}, gen, false);
  auto xv = x.to_vector();
  nn::BatchNorm2d bn(C);
  bn.to(DType::F64);
  std::vector<double> gamma{1.5, -0.5, 2.0}, beta{0.1, 0.2, -0.3};
  assign(bn, "weight", gamma);
  assign(bn, "bias", beta);
  auto y = bn.forward(x).to_vector();
  std::vector<double> mean, var;
  channel_stats(xv, B, C, HW, mean, var);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        size_t k = static_cast<size_t>((b * C + c) * HW + i);
        CHECK(y[k] == Approx((xv[k] - mean[c]) / std::sqrt(var[c] + 1e-5) * gamma[c] + beta[c]).epsilon(1e-12));
      }
  // running = 0.9 running + 0.1 batch (unbiased variance)
  double n = static_cast<double>(B * HW);
  auto rm = bn.tensor("running_mean").to_vector(), rv = bn.tensor("running_var").to_vector();
  for (int64_t c = 0; c < C; ++c) {
    CHECK(rm[c] == Approx(0.1 * mean[c]).epsilon(1e-12));
    CHECK(rv[c] == Approx(0.9 + 0.1 * var[c] * n / (n - 1)).epsilon(1e-12));
  }
  bn.eval();
  auto ye = bn.forward(x).to_vector();
  for (size_t k = 0; k < ye.size(); ++k) {
    int64_t c = static_cast<int64_t>(k / HW) % C;
    CHECK(ye[k] == Approx((xv[k] - rm[c]) / std::sqrt(rv[c] + 1e-5) * gamma[c] + beta[c]).epsilon(1e-12));
  }
  CHECK(bn.tensor("running_mean").to_vector() == rm);  // eval leaves them
}

TEST_CASE("ConditionalBatchNorm2d: gamma = 1 + gain[y], beta = bias[y], by hand", "[layers][norm]") {
  const int64_t B = 3, C = 2, HW = 4;
  Rng gen(2);
  Tensor x = randn64({B, C, 2, 2}, gen, false);
  auto xv = x.to_vector();
  nn::ConditionalBatchNorm2d cbn(C, 3);
  cbn.to(DType::F64);
  // Official init: gamma 1, beta 0 for every class.
  CHECK(cbn.tensor("gain.weight").to_vector() == std::vector<double>(6, 0.0));
  CHECK(cbn.tensor("bias.weight").to_vector() == std::vector<double>(6, 0.0));
  std::vector<double> gain{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, bias{-1, -2, -3, -4, -5, -6};  // (3 classes, 2)
  assign(cbn, "gain.weight", gain);
  assign(cbn, "bias.weight", bias);
  std::vector<int64_t> labels{2, 0, 2};
  auto y = cbn.forward(x, Tensor::from_vector(labels, {B})).to_vector();
  std::vector<double> mean, var;
  channel_stats(xv, B, C, HW, mean, var);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        size_t k = static_cast<size_t>((b * C + c) * HW + i);
        size_t e = static_cast<size_t>(labels[b] * C + c);
        double want = (xv[k] - mean[c]) / std::sqrt(var[c] + 1e-5) * (1 + gain[e]) + bias[e];
        CHECK(y[k] == Approx(want).epsilon(1e-12));
      }
}

TEST_CASE("ConditionalBatchNorm2d without classes is an affine BatchNorm2d", "[layers][norm]") {
  Rng g1(3);
  nn::ConditionalBatchNorm2d cbn(3, 0);
  nn::BatchNorm2d bn(3);
  cbn.to(DType::F64);
  bn.to(DType::F64);
  assign(cbn, "weight", {1.1, 0.9, -0.7});
  assign(bn, "weight", {1.1, 0.9, -0.7});
  CHECK(cbn.state().size() == 4);
  Tensor x = randn64({2, 3, 3, 2}, g1, false);
  CHECK(allclose(cbn.forward(x, Tensor()), bn.forward(x), 1e-15, 1e-15).ok);
}

TEST_CASE("BatchNorm2d and ConditionalBatchNorm2d gradients", "[layers][norm][gradcheck]") {
  Rng gen(4);
  SECTION("BatchNorm2d") {
    nn::BatchNorm2d bn(3);
    bn.to(DType::F64);
    Tensor x = randn64({2, 3, 5, 7}, gen), w = randn64({3}, gen), b = randn64({3}, gen);
    REQUIRE_GRADCHECK(
        [&](const auto& in) {
          bn.set_tensor("weight", in[1]);
          bn.set_tensor("bias", in[2]);
          return bn.forward(in[0]);
        },
        x, w, b);
  }
  SECTION("ConditionalBatchNorm2d") {
    nn::ConditionalBatchNorm2d cbn(2, 3);
    cbn.to(DType::F64);
    Tensor x = randn64({3, 2, 3, 5}, gen), g = randn64({3, 2}, gen), b = randn64({3, 2}, gen);
    Tensor y = Tensor::from_vector(std::vector<int64_t>{2, 0, 2}, {3});
    REQUIRE_GRADCHECK(
        [&](const auto& in) {
          cbn.set_tensor("gain.weight", in[1]);
          cbn.set_tensor("bias.weight", in[2]);
          return cbn.forward(in[0], y);
        },
        x, g, b);
  }
}

TEST_CASE("Batch norm layers name the layer and shapes on bad input", "[layers][norm]") {
  nn::BatchNorm2d bn(3);
  REQUIRE_THROWS_WITH(bn.forward(Tensor::zeros({2, 4, 2, 2})),
                      Catch::Contains("BatchNorm2d: input must be (B, 3, H, W), got [2, 4, 2, 2]"));
  nn::ConditionalBatchNorm2d cbn(3, 5);
  REQUIRE_THROWS_WITH(cbn.forward(Tensor::zeros({2, 3}), Tensor()),
                      Catch::Contains("ConditionalBatchNorm2d: input must be (B, 3, H, W), got [2, 3]"));
  REQUIRE_THROWS_WITH(
      cbn.forward(Tensor::zeros({2, 3, 2, 2}), Tensor::from_vector(std::vector<int64_t>{1}, {1})),
      Catch::Contains("ConditionalBatchNorm2d: labels must be (B) = (2) for input [2, 3, 2, 2], got [1]"));
  REQUIRE_THROWS_WITH(nn::ConditionalBatchNorm2d(0, 2),
                      Catch::Contains("ConditionalBatchNorm2d: need positive channels"));
}
