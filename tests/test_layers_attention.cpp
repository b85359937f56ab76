// SelfAttention: forward against PyTorch goldens (official pooled form and
// the paper's variant; training mode with its power iteration, then eval),
// the attention map accessor, float64 gradient checks wrt x, every weight
// and gamma, and error messages.
#include <catch2/catch.hpp>

#include "sagan/core/ops.h"
#include "sagan/layers/self_attention.h"
#include "tests/golden/sagan_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

TEST_CASE("SelfAttention matches the PyTorch reference (train with power iteration, eval)", "[layers][attention]") {
  GoldenFile g = load_golden("sagan_attention");
  for (const char* variant : {"pooled", "paper"}) {
    for (bool batched : {false, true}) {
      INFO(variant << (batched ? " batched power iteration" : ""));
      bool pooled = g.meta[variant]["pooled"].get<bool>();
      Rng gen(1);
      nn::SelfAttention att(g.meta[variant]["channels"].get<int64_t>(), gen, pooled);
      att.to(DType::F64);
      att.load_state(g.group(std::string(variant) + "/state/"));
      att.set_keep_attention_map(true);
      if (batched) REQUIRE(nn::power_iterate_all(att) == (pooled ? 4 : 3));
      Tensor x = g.at(std::string(variant) + "/input");
      REQUIRE_CLOSE(att.forward(x), g.at(std::string(variant) + "/out_train"), 1e-10, 1e-12);
      REQUIRE_CLOSE(att.last_attention_map(), g.at(std::string(variant) + "/map_train"), 1e-10, 1e-12);
      for (auto& [name, t] : g.group(std::string(variant) + "/after/")) {
        INFO(name);
        REQUIRE_CLOSE(att.tensor(name), t, 1e-10, 1e-12);
      }
      att.eval();
      REQUIRE_CLOSE(att.forward(x), g.at(std::string(variant) + "/out_eval"), 1e-10, 1e-12);
    }
  }
}

TEST_CASE("SelfAttention: gamma starts at 0 (identity), map only when asked", "[layers][attention]") {
  Rng gen(2);
  nn::SelfAttention att(16, gen);
  att.to(DType::F64);
  CHECK(att.gamma().to_vector() == std::vector<double>{0.0});
  CHECK(att.named_parameters().size() == 5);  // theta, phi, g, o weights and gamma: no biases
  Tensor x = randn64({2, 16, 4, 6}, gen, false);
  CHECK(att.forward(x).to_vector() == x.to_vector());
  CHECK_FALSE(att.last_attention_map().defined());
  att.set_keep_attention_map(true);
  att.forward(x);
  Tensor map = att.last_attention_map();
  REQUIRE(map.shape() == Shape{2, 24, 6});  // (B, N, N/4)
  Tensor rows = sum(map, {2});
  CHECK(allclose(rows, std::vector<double>(48, 1.0), 1e-12, 1e-12).ok);

  nn::SelfAttention paper(8, gen, false);
  CHECK(paper.tensor("g.weight_orig").shape() == Shape{8, 8, 1, 1});  // values keep C channels
  CHECK(paper.named_parameters().size() == 4);                        // no output conv
}

TEST_CASE("SelfAttention gradients wrt x, every weight and gamma", "[layers][attention][gradcheck]") {
  Rng gen(3);
  for (bool pooled : {true, false}) {
    INFO((pooled ? "pooled" : "paper"));
    const int64_t C = 16;  // C/8 = 2 query features, so a mix-up of the feature axis shows
    nn::SelfAttention att(C, gen, pooled);
    att.to(DType::F64);
    std::vector<std::string> names;
    std::vector<Tensor> inputs{randn64(pooled ? Shape{2, C, 2, 4} : Shape{2, C, 3, 3}, gen)};
    for (auto& [name, p] : att.named_parameters()) {
      names.push_back(name);
      inputs.push_back(name == "gamma"
                           ? Tensor::from_vector(std::vector<double>{0.8}, {1}, DType::F64).set_requires_grad(true)
                           : randn64(p.shape(), gen));
      att.set_tensor(name, inputs.back());
    }
    {
      // u, v converge to the new weights' singular vectors, then are held.
      NoGradGuard ng;
      for (auto* sn : nn::spectral_norm_layers(att))
        for (int i = 0; i < 30; ++i) sn->normalized_weight();
      att.eval();
    }
    auto f = [&](const std::vector<Tensor>& in) {
      for (size_t i = 0; i < names.size(); ++i) att.set_tensor(names[i], in[i + 1]);
      return att.forward(in[0]);
    };
    auto r = gradcheck(f, inputs);
    INFO(r.message);
    REQUIRE(r.ok);
  }
}

TEST_CASE("SelfAttention names the layer and shapes on bad input", "[layers][attention]") {
  Rng gen(4);
  REQUIRE_THROWS_WITH(nn::SelfAttention(12, gen),
                      Catch::Contains("SelfAttention: channels must be a positive multiple of 8, got 12"));
  nn::SelfAttention att(16, gen);
  REQUIRE_THROWS_WITH(att.forward(Tensor::zeros({2, 8, 4, 4})),
                      Catch::Contains("SelfAttention: input must be (B, 16, H, W), got [2, 8, 4, 4]"));
  REQUIRE_THROWS_WITH(att.forward(Tensor::zeros({2, 16, 5, 4})),
                      Catch::Contains("SelfAttention: pooled attention needs even H and W, got input [2, 16, 5, 4]"));
}
