// Residual blocks: shapes and parameter layout, float64 gradient checks wrt
// the input and every parameter (batch statistics on, spectral-norm vectors
// held), error messages. Forward values are checked against PyTorch through
// the whole models in tests/test_models.cpp.
#include <catch2/catch.hpp>
#include <functional>

#include "sagan/core/ops.h"
#include "sagan/layers/dblock.h"
#include "sagan/layers/gblock.h"
#include "tests/support/gradcheck.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
// Gradient check of run(x) wrt x and every parameter of m, each parameter
// replaced by a random float64 tensor. Spectral-norm layers first iterate to
// their new weights' singular vectors (u, v from other weights could make
// sigma tiny and the check ill-conditioned), then go to eval so u, v are held;
// the rest stays in training mode (batch statistics).
GradcheckResult check_block(nn::Module& m, const Shape& x_shape, Rng& gen,
                            const std::function<Tensor(const Tensor&)>& run) {
  m.to(DType::F64);
  std::vector<std::string> names;
  std::vector<Tensor> inputs{randn64(x_shape, gen)};
  for (auto& [name, p] : m.named_parameters()) {
    names.push_back(name);
    inputs.push_back(randn64(p.shape(), gen));
    m.set_tensor(name, inputs.back());
  }
  {
    NoGradGuard ng;
    for (auto* sn : nn::spectral_norm_layers(m)) {
      for (int i = 0; i < 30; ++i) sn->normalized_weight();
      sn->eval();
    }
  }
  return gradcheck(
      [&](const std::vector<Tensor>& in) {
        for (size_t i = 0; i < names.size(); ++i) m.set_tensor(names[i], in[i + 1]);
        return run(in[0]);
      },
      inputs);
}
}  // namespace

TEST_CASE("Residual blocks: output shapes and shortcut layout", "[layers][blocks]") {
  Rng gen(1);
  nn::GBlock g(4, 3, 2, gen);
  Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  CHECK(g.forward(Tensor::randn({2, 4, 3, 5}, gen), y).shape() == Shape{2, 3, 6, 10});
  nn::DOptimizedBlock d0(3, 5, gen);
  CHECK(d0.forward(Tensor::randn({2, 3, 8, 6}, gen)).shape() == Shape{2, 5, 4, 3});
  nn::DBlock down(5, 6, true, gen), flat(6, 6, false, gen), widen(6, 8, false, gen);
  CHECK(down.forward(Tensor::randn({2, 5, 4, 6}, gen)).shape() == Shape{2, 6, 2, 3});
  CHECK(flat.forward(Tensor::randn({2, 6, 3, 5}, gen)).shape() == Shape{2, 6, 3, 5});
  CHECK(widen.forward(Tensor::randn({2, 6, 3, 5}, gen)).shape() == Shape{2, 8, 3, 5});
  // The shortcut conv exists only when channels change or the block pools.
  CHECK(down.state().count("conv_sc.weight_orig") == 1);
  CHECK(flat.state().count("conv_sc.weight_orig") == 0);
  CHECK(widen.state().count("conv_sc.weight_orig") == 1);
  CHECK(g.state().count("conv_sc.weight_orig") == 1);
}

TEST_CASE("GBlock gradients (CBN, upsampling, SN convs, shortcut)", "[layers][blocks][gradcheck]") {
  Rng gen(2);
  nn::GBlock block(4, 3, 3, gen);
  Tensor y = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
  auto r = check_block(block, {2, 4, 3, 5}, gen, [&](const Tensor& x) { return block.forward(x, y); });
  INFO(r.message);
  REQUIRE(r.ok);
}

TEST_CASE("Unconditional GBlock gradients", "[layers][blocks][gradcheck]") {
  Rng gen(3);
  nn::GBlock block(3, 2, 0, gen);
  auto r = check_block(block, {2, 3, 3, 3}, gen, [&](const Tensor& x) { return block.forward(x, Tensor()); });
  INFO(r.message);
  REQUIRE(r.ok);
}

TEST_CASE("DOptimizedBlock gradients", "[layers][blocks][gradcheck]") {
  Rng gen(4);
  nn::DOptimizedBlock block(2, 3, gen);
  auto r = check_block(block, {2, 2, 4, 6}, gen, [&](const Tensor& x) { return block.forward(x); });
  INFO(r.message);
  REQUIRE(r.ok);
}

TEST_CASE("DBlock gradients (down with shortcut conv, and identity shortcut)", "[layers][blocks][gradcheck]") {
  Rng gen(5);
  SECTION("down, 3 -> 4 channels") {
    nn::DBlock block(3, 4, true, gen);
    auto r = check_block(block, {2, 3, 4, 6}, gen, [&](const Tensor& x) { return block.forward(x); });
    INFO(r.message);
    REQUIRE(r.ok);
  }
  SECTION("no pooling, identity shortcut") {
    nn::DBlock block(3, 3, false, gen);
    auto r = check_block(block, {2, 3, 3, 5}, gen, [&](const Tensor& x) { return block.forward(x); });
    INFO(r.message);
    REQUIRE(r.ok);
  }
}

TEST_CASE("Residual blocks name the block and shapes on bad input", "[layers][blocks]") {
  Rng gen(6);
  nn::GBlock g(4, 3, 2, gen);
  REQUIRE_THROWS_WITH(g.forward(Tensor::zeros({2, 3, 4, 4}), Tensor()),
                      Catch::Contains("GBlock: input must be (B, 4, H, W), got [2, 3, 4, 4]"));
  nn::DBlock d(3, 4, true, gen);
  REQUIRE_THROWS_WITH(d.forward(Tensor::zeros({2, 3, 5, 4})),
                      Catch::Contains("DBlock: downsampling needs even H and W, got input [2, 3, 5, 4]"));
  nn::DOptimizedBlock d0(3, 4, gen);
  REQUIRE_THROWS_WITH(d0.forward(Tensor::zeros({2, 1, 4, 4})),
                      Catch::Contains("DOptimizedBlock: input must be (B, 3, H, W), got [2, 1, 4, 4]"));
}
