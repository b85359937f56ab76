// The flat parameter buffer (layers/flat_parameters.h): parameters are views
// of one allocation, backward writes gradients into a second one, the
// readiness hook, the global gradient norm, conversions that keep the layout,
// and Adam as one backend call over the whole buffers.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"
#include "sagan/layers/adam.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/layers/gblock.h"
#include "sagan/layers/linear.h"
#include "sagan/layers/self_attention.h"

using namespace sagan;

namespace {

// A small model with parameters of odd sizes (none a multiple of the
// alignment), nested children and buffers.
class OddSizedNet : public nn::Module {
 public:
  explicit OddSizedNet(Rng& gen) {
    lin_ = register_module("lin", std::make_shared<nn::SNLinear>(5, 32, gen));
    att_ = register_module("att", std::make_shared<nn::SelfAttention>(8, gen, false));
    register_parameter("scale", Tensor::from_vector(std::vector<double>{0.5, -1.5, 2.0}, {3}));
  }
  // x (B, 5) -> (B); "scale" is used twice, so its gradient has two parts.
  Tensor forward(const Tensor& x) {
    const int64_t b = x.size(0);
    Tensor a = att_->forward(lin_->forward(x).view({b, 8, 2, 2}));  // (B, 8, 2, 2)
    Tensor s = param("scale");
    Tensor out = sum(a.view({b, 32}), {1});  // (B)
    return add(mul(out, sum(s)), sum(mul(s, s)));
  }

 protected:
  const char* type_name() const override { return "OddSizedNet"; }

 private:
  std::shared_ptr<nn::SNLinear> lin_;
  std::shared_ptr<nn::SelfAttention> att_;
};

const nn::ParamRange& range_named(const nn::FlatParameters& flat, const std::string& name) {
  for (const nn::ParamRange& r : flat.ranges())
    if (r.name == name) return r;
  FAIL("no parameter " << name);
  throw;
}

std::map<std::string, std::vector<double>> values_of(const NamedTensors& ts) {
  std::map<std::string, std::vector<double>> out;
  for (auto& [n, t] : ts) out[n] = t.to_vector();
  return out;
}

std::map<std::string, std::vector<double>> grads_of(const NamedTensors& ts) {
  std::map<std::string, std::vector<double>> out;
  for (auto& [n, t] : ts) out[n] = t.grad().defined() ? t.grad().to_vector() : std::vector<double>{};
  return out;
}

// Two identical nets (same seed), the second one flattened.
struct Pair {
  Rng g1{11}, g2{11};
  OddSizedNet plain{g1}, flat{g2};
  Tensor x;
  Pair() {
    flat.flatten_parameters();
    Rng xs(5);
    x = Tensor::randn({3, 5}, xs);
  }
};

}  // namespace

TEST_CASE("flattened parameters are aligned views of one buffer with their values kept", "[flat]") {
  Pair p;
  const auto& flat = p.flat.flat_parameters();
  REQUIRE(flat != nullptr);
  auto named = p.flat.named_parameters();
  REQUIRE(named.size() == flat->ranges().size());
  REQUIRE(values_of(named) == values_of(p.plain.named_parameters()));
  int64_t covered = 0;
  for (size_t i = 0; i < named.size(); ++i) {
    const auto& [name, t] = named[i];
    const nn::ParamRange& r = flat->ranges()[i];
    INFO(name);
    CHECK(r.name == name);
    CHECK(t.storage() == flat->data().storage());
    CHECK(t.offset() == r.offset);
    CHECK(r.offset % nn::FlatParameters::kAlign == 0);
    CHECK(t.is_contiguous());
    CHECK((t.is_leaf() && t.requires_grad()));
    CHECK(t.shape() == r.shape);
    if (i > 0) CHECK(r.offset >= flat->ranges()[i - 1].offset + flat->ranges()[i - 1].numel);
    covered += r.numel;
  }
  CHECK(covered == p.flat.num_parameters());
  CHECK(flat->size() >= covered);
  CHECK(flat->size() % nn::FlatParameters::kAlign == 0);
  // The padding is zero.
  std::vector<double> all = flat->data().to_vector();
  std::vector<bool> used(all.size(), false);
  for (auto& r : flat->ranges())
    for (int64_t k = 0; k < r.numel; ++k) used[static_cast<size_t>(r.offset + k)] = true;
  for (size_t k = 0; k < all.size(); ++k)
    if (!used[k]) REQUIRE(all[k] == 0.0);
  // Writing through the buffer is writing the parameter.
  {
    NoGradGuard ng;
    flat->data().narrow(0, flat->ranges()[0].offset, 1).fill_(42.0);
  }
  CHECK(named[0].second.to_vector()[0] == 42.0);
}

TEST_CASE("backward writes gradients into the flat gradient buffer, equal to unflattened ones", "[flat][autograd]") {
  Pair p;
  const auto& flat = p.flat.flat_parameters();
  for (int pass = 0; pass < 2; ++pass) {  // the second pass accumulates
    sum(p.plain.forward(p.x)).backward();
    sum(p.flat.forward(p.x)).backward();
  }
  auto want = grads_of(p.plain.named_parameters());
  auto got = grads_of(p.flat.named_parameters());
  CHECK(got == want);  // the same operations in the same order: bit for bit
  auto named = p.flat.named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    INFO(named[i].first);
    Tensor g = named[i].second.grad();
    REQUIRE(g.defined());
    CHECK(g.storage() == flat->grad().storage());
    CHECK(g.offset() == flat->ranges()[i].offset);
  }
  CHECK(flat->all_have_grad());

  // zero_grad: one fill; no parameter has a gradient; the buffer is zero.
  p.flat.zero_grad();
  CHECK_FALSE(flat->all_have_grad());
  for (auto& [n, t] : named) CHECK_FALSE(t.grad().defined());
  for (double v : flat->grad().to_vector()) REQUIRE(v == 0.0);

  // set_grad on a flat parameter copies into its slot; undefined zeroes it.
  Tensor s = p.flat.tensor("scale");
  s.set_grad(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::F32));
  CHECK(s.grad().storage() == flat->grad().storage());
  const int64_t at = range_named(*flat, "scale").offset;
  CHECK(flat->grad().narrow(0, at, 3).to_vector() == std::vector<double>{1, 2, 3});
  s.set_grad(Tensor());
  CHECK_FALSE(s.grad().defined());
  CHECK(flat->grad().narrow(0, at, 3).to_vector() == std::vector<double>{0, 0, 0});
}

TEST_CASE("the ready hook reports each parameter once, after its last gradient", "[flat][autograd]") {
  Pair p;
  auto& flat = *p.flat.flat_parameters();
  std::vector<size_t> order;
  std::map<size_t, std::vector<double>> at_ready;
  flat.set_grad_ready_hook([&](const nn::ParamRange& r) {
    order.push_back(r.index);
    at_ready[r.index] = flat.grad().narrow(0, r.offset, r.numel).to_vector();
  });
  sum(p.flat.forward(p.x)).backward();
  REQUIRE(order.size() == flat.ranges().size());
  REQUIRE(std::set<size_t>(order.begin(), order.end()).size() == order.size());
  for (auto& r : flat.ranges()) {
    INFO(r.name);
    // "scale" gets two contributions: it is reported with both in.
    CHECK(at_ready[r.index] == flat.grad().narrow(0, r.offset, r.numel).to_vector());
  }
  // "scale" is used last in the forward, so backward reaches it first (its
  // own parameter comes first in the layout: a module's own tensors precede
  // its children's); the first linear layer is reached after attention.
  const size_t scale = range_named(flat, "scale").index;
  CHECK(order.front() == scale);
  auto pos = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), range_named(flat, name).index) - order.begin();
  };
  CHECK(pos("att.theta.weight_orig") < pos("lin.weight_orig"));

  // Parameters that do not take part in a backward are not reported.
  order.clear();
  Tensor s = p.flat.tensor("scale");
  sum(mul(s, 2.0)).backward();
  CHECK(order == std::vector<size_t>{scale});
  // Removing the hook.
  flat.set_grad_ready_hook(nullptr);
  order.clear();
  sum(p.flat.forward(p.x)).backward();
  CHECK(order.empty());
}

TEST_CASE("the global gradient norm equals the per-parameter computation; clipping scales in place", "[flat][norm]") {
  Pair p;
  auto& flat = *p.flat.flat_parameters();
  sum(p.flat.forward(p.x)).backward();
  double sq = 0;
  for (auto& [n, t] : p.flat.named_parameters())
    for (double v : t.grad().to_vector()) sq += v * v;
  double norm = flat.grad_norm().item();
  CHECK(norm > 0);
  CHECK(norm == Approx(std::sqrt(sq)).epsilon(1e-6));
  // A parameter without a gradient counts as zero.
  p.flat.tensor("scale").set_grad(Tensor());
  double sq2 = 0;
  for (auto& [n, t] : p.flat.named_parameters())
    if (t.grad().defined())
      for (double v : t.grad().to_vector()) sq2 += v * v;
  CHECK(flat.grad_norm().item() == Approx(std::sqrt(sq2)).epsilon(1e-6));
  auto before = grads_of(p.flat.named_parameters());
  flat.scale_grad(0.25);
  for (auto& [n, t] : p.flat.named_parameters()) {
    if (!t.grad().defined()) continue;
    INFO(n);
    auto b = before[n];
    auto a = t.grad().to_vector();
    for (size_t k = 0; k < a.size(); ++k) REQUIRE(a[k] == static_cast<double>(static_cast<float>(b[k] * 0.25)));
  }
  // The factor as a tensor on the buffer's device: the same products.
  flat.scale_grad(Tensor::scalar(2.0, flat.dtype(), flat.device()));
  for (auto& [n, t] : p.flat.named_parameters()) {
    if (!t.grad().defined()) continue;
    auto b = before[n];
    auto a = t.grad().to_vector();
    for (size_t k = 0; k < a.size(); ++k) REQUIRE(a[k] == static_cast<double>(static_cast<float>(b[k] * 0.25) * 2.0f));
  }
  REQUIRE_THROWS_WITH(flat.scale_grad(Tensor::zeros({2}, flat.dtype(), flat.device())),
                      Catch::Contains("scale_grad") && Catch::Contains("one element"));
}

TEST_CASE("to(dtype) and load_state keep parameters in the flat buffer; misuse is refused", "[flat][module]") {
  Pair p;
  p.flat.to(DType::F64);
  const auto& flat = p.flat.flat_parameters();
  CHECK(flat->dtype() == DType::F64);
  for (auto& [n, t] : p.flat.named_parameters()) {
    INFO(n);
    CHECK(t.dtype() == DType::F64);
    CHECK(t.storage() == flat->data().storage());
    CHECK((t.is_leaf() && t.requires_grad()));
  }
  for (auto& [n, t] : p.flat.named_buffers()) CHECK(t.dtype() == DType::F64);
  // Same device: nothing is rebuilt.
  Tensor before = flat->data();
  p.flat.to(Device::cpu());
  CHECK(p.flat.flat_parameters()->data().same(before));

  // load_state copies into the views.
  p.flat.load_state(p.plain.state());
  CHECK(values_of(p.flat.named_parameters()) == values_of(p.plain.named_parameters()));
  for (auto& [n, t] : p.flat.named_parameters()) CHECK(t.storage() == flat->data().storage());

  // Gradients still land in the (new) gradient buffer.
  sum(p.flat.forward(p.x.to(DType::F64))).backward();
  for (auto& [n, t] : p.flat.named_parameters()) CHECK(t.grad().storage() == flat->grad().storage());

  auto children = p.flat.named_children();
  REQUIRE_THROWS_WITH(children[0].second->to(DType::F32), Catch::Contains("to() on a part of a model"));
  REQUIRE_THROWS_WITH(children[0].second->flatten_parameters(), Catch::Contains("flatten_parameters on a part"));
  REQUIRE_THROWS_WITH(p.flat.set_tensor("scale", Tensor::zeros({3}, DType::F64)),
                      Catch::Contains("'scale' lives in a flat parameter buffer"));
  CHECK_NOTHROW(p.flat.set_tensor("lin.weight_u", Tensor::zeros({32}, DType::F64)));  // buffers may be swapped
  // Mixed dtypes cannot share a buffer.
  NamedTensors mixed = {{"a", Tensor::zeros({2})}, {"b", Tensor::zeros({2}, DType::F64)}};
  REQUIRE_THROWS_WITH(nn::FlatParameters(mixed), Catch::Contains("one buffer holds one dtype"));
}

TEST_CASE("Adam over flat parameters: one backend call over whole buffers, same result", "[flat][adam]") {
  Pair p;
  nn::Adam plain_opt(p.plain, {1e-2, 0.5, 0.9, 1e-8});
  nn::Adam flat_opt(p.flat, {1e-2, 0.5, 0.9, 1e-8});
  for (int step = 0; step < 3; ++step) {
    plain_opt.zero_grad();
    flat_opt.zero_grad();
    sum(p.plain.forward(p.x)).backward();
    sum(p.flat.forward(p.x)).backward();
    plain_opt.step();
    flat_opt.step();
    CHECK(flat_opt.last_step_launches().calls == 1);
    CHECK(flat_opt.last_step_launches().tensors == 1);
    CHECK(plain_opt.last_step_launches().calls == 1);
    CHECK(plain_opt.last_step_launches().tensors == static_cast<int64_t>(p.plain.named_parameters().size()));
  }
  // The same formula element by element. Not always bit for bit: the CPU
  // kernel's scalar tail of a short tensor may round differently (FMA
  // contraction) from its vector body, and in one flat buffer no element
  // is in a tail.
  auto a = values_of(p.plain.named_parameters()), b = values_of(p.flat.named_parameters());
  for (auto& [n, v] : a) {
    INFO(n);
    REQUIRE(b[n].size() == v.size());
    for (size_t k = 0; k < v.size(); ++k) REQUIRE(b[n][k] == Approx(v[k]).epsilon(1e-6).margin(1e-7));
  }
  // The moments keep their per-parameter checkpoint names and stay flat.
  auto st = flat_opt.state();
  CHECK(st.count("exp_avg.lin.weight_orig") == 1);
  CHECK(st.count("exp_avg_sq.scale") == 1);
  CHECK(st.size() == 1 + 2 * p.flat.named_parameters().size());
  CHECK(st.at("exp_avg.lin.weight_orig").storage() == st.at("exp_avg.scale").storage());
  // The padding stays zero after the updates.
  const auto& flat = *p.flat.flat_parameters();
  std::vector<double> all = flat.data().to_vector();
  std::vector<bool> used(all.size(), false);
  for (auto& r : flat.ranges())
    for (int64_t k = 0; k < r.numel; ++k) used[static_cast<size_t>(r.offset + k)] = true;
  for (size_t k = 0; k < all.size(); ++k)
    if (!used[k]) REQUIRE(all[k] == 0.0);

  // A step where one parameter has no gradient: one call over the others,
  // and that parameter does not move.
  flat_opt.zero_grad();
  Tensor s = p.flat.tensor("scale");
  std::vector<double> s_before = s.to_vector();
  sum(p.flat.forward(p.x.detach())).backward();
  s.set_grad(Tensor());
  flat_opt.step();
  CHECK(flat_opt.last_step_launches().calls == 1);
  CHECK(flat_opt.last_step_launches().tensors == static_cast<int64_t>(p.flat.named_parameters().size()) - 1);
  CHECK(s.to_vector() == s_before);
}

TEST_CASE("Adam refuses a step without any gradient and a tensor given twice", "[flat][adam]") {
  // Built before flatten_parameters() (or to()), the optimiser holds the
  // replaced tensors: their gradients never come, and a step used to update
  // nothing while counting itself.
  Rng g(3);
  OddSizedNet net(g);
  nn::Adam stale(net, {1e-2, 0.5, 0.9, 1e-8});
  net.flatten_parameters();
  Rng xs(5);
  sum(net.forward(Tensor::randn({3, 5}, xs))).backward();
  REQUIRE_THROWS_WITH(stale.step(),
                      Catch::Contains("Adam::step: none of its") && Catch::Contains("flatten_parameters()"));
  CHECK(stale.step_count() == 0);
  nn::Adam fresh(net, {1e-2, 0.5, 0.9, 1e-8});
  CHECK_NOTHROW(fresh.step());
  Tensor w = Tensor::zeros({2}).set_requires_grad(true);
  REQUIRE_THROWS_WITH(nn::Adam({{"a", w}, {"b", w}}, {}), Catch::Contains("'a' and 'b' are the same tensor"));
}
