// Module bookkeeping (names, state, modes, conversion), initialisation and
// the Adam optimiser.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/layers/adam.h"
#include "sagan/layers/gblock.h"
#include "sagan/layers/init.h"
#include "sagan/layers/linear.h"
#include "tests/support/gradcheck.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
std::vector<std::string> names_of(const NamedTensors& ts) {
  std::vector<std::string> out;
  for (auto& [n, t] : ts) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("Module names parameters and buffers with dotted paths like PyTorch", "[layers][module]") {
  Rng gen(1);
  nn::GBlock block(4, 3, 5, gen);
  CHECK(names_of(block.named_parameters()) ==
        std::vector<std::string>{"bn1.gain.weight", "bn1.bias.weight", "conv1.weight_orig", "conv1.bias",
                                 "bn2.gain.weight", "bn2.bias.weight", "conv2.weight_orig", "conv2.bias",
                                 "conv_sc.weight_orig", "conv_sc.bias"});
  CHECK(names_of(block.named_buffers()) ==
        std::vector<std::string>{"bn1.running_mean", "bn1.running_var", "conv1.weight_u", "conv1.weight_v",
                                 "bn2.running_mean", "bn2.running_var", "conv2.weight_u", "conv2.weight_v",
                                 "conv_sc.weight_u", "conv_sc.weight_v"});
  CHECK(block.tensor("conv1.weight_orig").shape() == Shape{3, 4, 3, 3});
  CHECK(block.tensor("conv1.weight_v").shape() == Shape{36});
  CHECK(block.tensor("bn1.gain.weight").shape() == Shape{5, 4});
  // 2*(5*4) + 108+3 + 2*(5*3) + 81+3 + 12+3
  CHECK(block.num_parameters() == 40 + 111 + 30 + 84 + 15);
  for (auto& p : block.parameters()) CHECK((p.requires_grad() && p.is_leaf()));
  for (auto& [n, b] : block.named_buffers()) CHECK_FALSE(b.requires_grad());
  CHECK(block.state().size() == 20);
}

TEST_CASE("Module train/eval reaches every descendant", "[layers][module]") {
  Rng gen(2);
  nn::GBlock block(4, 3, 0, gen);
  CHECK(block.is_training());
  block.eval();
  for (nn::Module* m : block.modules()) CHECK_FALSE(m->is_training());
  block.train();
  for (nn::Module* m : block.modules()) CHECK(m->is_training());
  CHECK(block.modules().size() == 6);
}

TEST_CASE("load_state copies values and names missing, mis-shaped and unknown tensors", "[layers][module]") {
  Rng gen(3);
  nn::SNLinear a(5, 3, gen), b(5, 3, gen);
  auto sa = a.state();
  b.load_state(sa);
  for (auto& [n, t] : b.state()) CHECK(t.to_vector() == sa.at(n).to_vector());
  // The copy is by value: b keeps its own storage.
  {
    NoGradGuard ng;
    a.tensor("bias").fill_(7.0);
  }
  CHECK(b.tensor("bias").to_vector() == std::vector<double>(3, 0.0));

  auto missing = sa;
  missing.erase("weight_u");
  REQUIRE_THROWS_WITH(b.load_state(missing), Catch::Contains("missing tensor 'weight_u'"));
  auto bad = sa;
  bad["weight_orig"] = Tensor::zeros({3, 4});
  REQUIRE_THROWS_WITH(b.load_state(bad), Catch::Contains("'weight_orig' has shape [3, 4], expected [3, 5]"));
  auto extra = sa;
  extra["gamma"] = Tensor::zeros({1});
  REQUIRE_THROWS_WITH(b.load_state(extra), Catch::Contains("unexpected tensor 'gamma'"));
  REQUIRE_THROWS_WITH(b.set_tensor("nope", Tensor::zeros({1})), Catch::Contains("no tensor 'nope'"));
  REQUIRE_THROWS_WITH(b.set_tensor("bias", Tensor::zeros({4})), Catch::Contains("'bias' has shape [4], expected [3]"));
}

TEST_CASE("Module::to(dtype) keeps parameters as trainable leaves; zero_grad clears", "[layers][module]") {
  Rng gen(4);
  nn::SNLinear lin(4, 2, gen);
  lin.to(DType::F64);
  for (auto& [n, t] : lin.state()) CHECK(t.dtype() == DType::F64);
  for (auto& p : lin.parameters()) CHECK((p.requires_grad() && p.is_leaf()));
  Tensor x = randn64({3, 4}, gen, false);
  sum(lin.forward(x)).backward();
  CHECK(lin.tensor("bias").grad().defined());
  CHECK(lin.tensor("bias").grad().to_vector() == std::vector<double>{3, 3});
  lin.zero_grad();
  CHECK_FALSE(lin.tensor("bias").grad().defined());
}

TEST_CASE("Module::to that converts nothing keeps the very tensors: an optimiser built before still trains",
          "[layers][module]") {
  Rng gen(5);
  nn::SNLinear lin(3, 2, gen);
  lin.to(DType::F64);
  nn::Adam opt(lin.named_parameters(), {1e-2, 0.0, 0.9, 1e-8});
  const Tensor bias = lin.tensor("bias"), u = lin.tensor("weight_u");
  lin.tensor("bias").set_grad(Tensor::ones({2}, DType::F64));
  lin.to(DType::F64);  // already float64
  lin.to(Device::cpu());  // already there
  CHECK(lin.tensor("bias").same(bias));
  CHECK(lin.tensor("weight_u").same(u));
  CHECK(lin.tensor("bias").grad().defined());  // the gradient stays
  const double before = bias.to_vector()[0];
  opt.step();
  CHECK(lin.tensor("bias").to_vector()[0] == Approx(before - 1e-2 / (1 + 1e-8)).epsilon(1e-12));
}

TEST_CASE("xavier_uniform: bound, fans and determinism", "[layers][init]") {
  Rng g1(5), g2(5);
  Tensor a = nn::xavier_uniform({6, 4, 3, 3}, g1), b = nn::xavier_uniform({6, 4, 3, 3}, g2);
  CHECK(a.to_vector() == b.to_vector());
  double bound = std::sqrt(6.0 / (4 * 9 + 6 * 9)), mx = 0, s2 = 0;
  for (double x : a.to_vector()) {
    mx = std::max(mx, std::abs(x));
    s2 += x * x;
  }
  CHECK(mx <= bound);
  CHECK(mx > 0.9 * bound);
  // Variance of U(-b, b) is b^2 / 3 (216 draws: loose).
  CHECK(s2 / 216 == Approx(bound * bound / 3).epsilon(0.2));
  Tensor u = nn::random_unit_vector(7, g1, DType::F64);
  double n2 = 0;
  for (double x : u.to_vector()) n2 += x * x;
  CHECK(n2 == Approx(1.0).epsilon(1e-12));
  REQUIRE_THROWS_WITH(nn::xavier_uniform({5}, g1), Catch::Contains("xavier_uniform: needs at least 2 dims"));
}

TEST_CASE("Adam matches a hand-computed update and round-trips its state", "[layers][adam]") {
  Tensor p = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}, DType::F64);
  p.set_requires_grad(true);
  nn::Adam opt({{"w", p}}, {0.1, 0.5, 0.9, 1e-8});
  std::vector<double> g1{0.2, -0.4}, g2{-0.1, 0.3};
  std::vector<double> want = {1.0, -2.0}, m(2, 0.0), v(2, 0.0);
  for (int t = 1; t <= 2; ++t) {
    const auto& g = t == 1 ? g1 : g2;
    p.set_grad(Tensor::from_vector(g, {2}, DType::F64));
    opt.step();
    for (size_t i = 0; i < 2; ++i) {
      m[i] = 0.5 * m[i] + 0.5 * g[i];
      v[i] = 0.9 * v[i] + 0.1 * g[i] * g[i];
      double mh = m[i] / (1 - std::pow(0.5, t)), vh = v[i] / (1 - std::pow(0.9, t));
      want[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
    }
  }
  auto got = p.to_vector();
  CHECK(got[0] == Approx(want[0]).epsilon(1e-12));
  CHECK(got[1] == Approx(want[1]).epsilon(1e-12));
  CHECK(opt.step_count() == 2);

  auto st = opt.state();
  CHECK(st.at("step").item() == 2);
  CHECK(st.at("exp_avg.w").to_vector()[0] == Approx(m[0]));
  CHECK(st.at("exp_avg_sq.w").to_vector()[1] == Approx(v[1]));
  Tensor q = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}, DType::F64);
  q.set_requires_grad(true);
  nn::Adam other({{"w", q}}, {0.1, 0.5, 0.9, 1e-8});
  other.load_state(st);
  CHECK(other.step_count() == 2);
  CHECK(other.state().at("exp_avg_sq.w").to_vector() == st.at("exp_avg_sq.w").to_vector());

  auto bad = st;
  bad.erase("exp_avg.w");
  REQUIRE_THROWS_WITH(other.load_state(bad), Catch::Contains("missing tensor 'exp_avg.w'"));
  bad = st;
  bad["exp_avg.w"] = Tensor::zeros({3}, DType::F64);
  REQUIRE_THROWS_WITH(other.load_state(bad), Catch::Contains("'exp_avg.w' has shape [3], expected [2]"));
  bad = st;
  bad["exp_avg.u"] = Tensor::zeros({2}, DType::F64);
  REQUIRE_THROWS_WITH(other.load_state(bad), Catch::Contains("unexpected tensor 'exp_avg.u'"));
}

TEST_CASE("Adam skips parameters without a gradient and updates a module in one call", "[layers][adam]") {
  Rng gen(6);
  nn::SNLinear lin(3, 2, gen);
  lin.to(DType::F64);
  nn::Adam opt(lin.named_parameters(), {1e-2, 0.0, 0.9, 1e-8});
  auto before = lin.state();
  std::map<std::string, std::vector<double>> snap;
  for (auto& [n, t] : before) snap[n] = t.to_vector();
  lin.tensor("bias").set_grad(Tensor::ones({2}, DType::F64));
  opt.step();
  // The first step moves each element by lr * g / (|g| + eps).
  auto b = lin.tensor("bias").to_vector();
  CHECK(b[0] == Approx(snap["bias"][0] - 1e-2 / (1 + 1e-8)).epsilon(1e-12));
  CHECK(lin.tensor("weight_orig").to_vector() == snap["weight_orig"]);  // no grad: untouched
  REQUIRE_THROWS_WITH(nn::Adam({{"x", Tensor::zeros({2})}}, {}), Catch::Contains("Adam: parameter 'x' must be a leaf"));
}
