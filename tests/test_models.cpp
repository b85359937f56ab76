// SAGAN generator and discriminator: configuration checks, architectures,
// exact parameter counts against the PyTorch reference, and a whole forward
// and backward of a tiny G and D against PyTorch goldens in float64
// (tests/golden/make_sagan_goldens.py).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/models/discriminator.h"
#include "sagan/models/generator.h"
#include "tests/golden/sagan_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : t.to_vector()) m = std::max(m, std::abs(x));
  return m;
}

// Gradients that are zero in exact arithmetic (a conv bias followed by batch
// norm) come out at rounding level: compare against the tensor's scale.
double grad_atol(const Tensor& want) { return std::max(1e-9 * max_abs(want), 1e-12); }

// Runs one model of the tiny golden: training forward, backward of
// sum(out * r), buffers after, eval forward; everything against PyTorch.
template <class Model>
void check_tiny(Model& model, const GoldenFile& g, const std::string& tag, bool batched) {
  model.to(DType::F64);
  model.load_state(g.group(tag + "/state/"));
  Tensor x = g.at(tag + "/input").detach();
  x.set_requires_grad(true);
  Tensor y = g.at(tag + "/labels");
  if (batched) REQUIRE(model.power_iterate_all() == static_cast<int64_t>(nn::spectral_norm_layers(model).size()));
  Tensor out = model.forward(x, y);
  REQUIRE_CLOSE(out, g.at(tag + "/out_train"), 1e-10, 1e-12);
  sum(mul(out, g.at(tag + "/r"))).backward();
  Tensor gx = g.at(tag + "/grad/input");
  REQUIRE_CLOSE(x.grad(), gx, 1e-10, grad_atol(gx));
  for (auto& [name, p] : model.named_parameters()) {
    INFO(tag << " gradient of " << name);
    Tensor want = g.at(tag + "/grad/" + name);
    REQUIRE(p.grad().defined());
    REQUIRE_CLOSE(p.grad(), want, 1e-10, grad_atol(want));
  }
  for (auto& [name, b] : model.named_buffers()) {
    INFO(tag << " buffer after the training forward: " << name);
    REQUIRE_CLOSE(b, g.at(tag + "/after/" + name), 1e-10, 1e-12);
  }
  model.eval();
  NoGradGuard ng;
  REQUIRE_CLOSE(model.forward(x, y), g.at(tag + "/out_eval"), 1e-10, 1e-12);
}
}  // namespace

TEST_CASE("SaganConfig defaults and architectures for 32, 64, 128", "[models][config]") {
  SaganConfig c;
  c.validate();
  CHECK(c.g_attention() == std::vector<int64_t>{16});
  CHECK(c.g_widths() == std::vector<int64_t>{256, 256, 256, 256});
  auto d = c.d_blocks();
  REQUIRE(d.size() == 4);
  CHECK((d[0].in == 3 && d[0].out == 128 && d[0].down && d[0].out_res == 16));
  CHECK((d[1].down && d[1].out_res == 8 && !d[2].down && !d[3].down && d[3].out_res == 8));
  c.resolution = 64;
  CHECK(c.g_attention() == std::vector<int64_t>{32});
  CHECK(c.g_widths() == std::vector<int64_t>{1024, 512, 256, 128, 64});
  c.resolution = 128;
  CHECK(c.d_attention() == std::vector<int64_t>{64});
  CHECK(c.g_widths() == std::vector<int64_t>{1024, 1024, 512, 256, 128, 64});
  d = c.d_blocks();
  std::vector<int64_t> outs, res;
  for (auto& b : d) {
    outs.push_back(b.out);
    res.push_back(b.out_res);
  }
  CHECK(outs == std::vector<int64_t>{64, 128, 256, 512, 1024, 1024});
  CHECK(res == std::vector<int64_t>{64, 32, 16, 8, 4, 4});
  CHECK_FALSE(d.back().down);
  c.resolution = 256;
  CHECK(c.g_widths() == std::vector<int64_t>{1024, 1024, 1024, 512, 256, 128, 64});
  CHECK(c.g_attention() == std::vector<int64_t>{64});
}

TEST_CASE("SaganConfig: g_ch and d_ch set each network's widths, ch both", "[models][config]") {
  SaganConfig c;
  c.ch = 32;
  c.d_ch = 16;
  CHECK(c.g_widths() == std::vector<int64_t>{128, 128, 128, 128});
  for (auto& b : c.d_blocks()) CHECK(b.out == 32);
  c.g_ch = 8;
  CHECK(c.g_widths() == std::vector<int64_t>{32, 32, 32, 32});
  c.resolution = 128;  // D's factors are G's reversed, times d_ch
  CHECK(c.g_widths() == std::vector<int64_t>{128, 128, 64, 32, 16, 8});
  std::vector<int64_t> outs;
  for (auto& b : c.d_blocks()) outs.push_back(b.out);
  CHECK(outs == std::vector<int64_t>{16, 32, 64, 128, 256, 256});
  c.validate();
  c.g_ch = -1;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("SaganConfig: g_ch: must be positive (0: ch), got -1"));
}

TEST_CASE("SaganConfig::validate names the option and the bad value", "[models][config]") {
  SaganConfig c;
  c.resolution = 48;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("SaganConfig: resolution: must be a power of two >= 32, got 48"));
  c.resolution = 16;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("got 16"));
  c = SaganConfig{};
  c.g_attn_res = std::vector<int64_t>{4};
  REQUIRE_THROWS_WITH(c.validate(),
                      Catch::Contains("g_attn_res: 4 is not a resolution the generator's blocks produce (8, 16, 32)"));
  c = SaganConfig{};
  c.d_attn_res = std::vector<int64_t>{32};
  REQUIRE_THROWS_WITH(c.validate(),
                      Catch::Contains("d_attn_res: 32 is not a resolution the discriminator's blocks produce (16, 8)"));
  c = SaganConfig{};
  c.g_attn_res = std::vector<int64_t>{16, 16};
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("g_attn_res: lists 16 twice"));
  c = SaganConfig{};
  c.ch = 3;  // G widths 12: no whole C/8 queries
  REQUIRE_THROWS_WITH(
      c.validate(),
      Catch::Contains("g_attn_res: 16: self-attention needs channels divisible by 8, the block has 12 (ch = 3)"));
  c.g_attn_res = std::vector<int64_t>{};
  REQUIRE_THROWS_WITH(
      c.validate(),
      Catch::Contains("d_attn_res: 16: self-attention needs channels divisible by 8, the block has 6 (ch = 3)"));
  c = SaganConfig{};
  c.num_classes = -1;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("num_classes: must be >= 0"));
  c = SaganConfig{};
  c.g_attn_res = std::vector<int64_t>{};  // no attention is fine
  c.d_attn_res = std::vector<int64_t>{};
  c.ch = 3;
  CHECK_NOTHROW(c.validate());
  Rng gen(1);
  c.resolution = 40;
  REQUIRE_THROWS_WITH(SaganGenerator(c, gen), Catch::Contains("resolution: must be a power of two"));
}

TEST_CASE("Parameter counts equal the PyTorch reference's", "[models][params]") {
  const Json& j = golden_json("sagan_param_counts.json");
  REQUIRE(j.size() >= 3);
  for (auto& [name, e] : j.items()) {
    INFO(name);
    SaganConfig c = golden_sagan_config(e.at("config"));
    Rng gen(1);
    {
      SaganGenerator G(c, gen);
      CHECK(G.num_parameters() == e.at("G").get<int64_t>());
    }
    {
      SaganDiscriminator D(c, gen);
      CHECK(D.num_parameters() == e.at("D").get<int64_t>());
    }
  }
}

TEST_CASE("G and D blocks carry the reference's tensor names and shapes", "[models][params][names]") {
  // Checkpoints and tools/checkpoint_to_torch.py depend on these names:
  // blocks.<i> numbers up and attention blocks in one sequence.
  const Json& j = golden_json("sagan_names.json");
  REQUIRE(j.size() >= 3);
  auto listed = [](const NamedTensors& ts) {
    std::vector<std::pair<std::string, Shape>> out;
    for (auto& [n, t] : ts) out.emplace_back(n, t.shape());
    std::sort(out.begin(), out.end());
    return out;
  };
  auto golden = [](const Json& list) {
    std::vector<std::pair<std::string, Shape>> out;
    for (auto& e : list) out.emplace_back(e.at(0).get<std::string>(), e.at(1).get<Shape>());
    return out;
  };
  for (auto& [name, e] : j.items()) {
    INFO(name);
    SaganConfig c = golden_sagan_config(e.at("config"));
    Rng gen(1);
    SaganGenerator G(c, gen);
    CHECK(listed(G.named_parameters()) == golden(e.at("G").at("parameters")));
    CHECK(listed(G.named_buffers()) == golden(e.at("G").at("buffers")));
    SaganDiscriminator D(c, gen);
    CHECK(listed(D.named_parameters()) == golden(e.at("D").at("parameters")));
    CHECK(listed(D.named_buffers()) == golden(e.at("D").at("buffers")));
  }
}

TEST_CASE("Tiny G and D match PyTorch: forward, every gradient, buffers, eval", "[models][golden]") {
  GoldenFile g = load_golden("sagan_tiny");
  SaganConfig c = golden_sagan_config(g.meta["config"]);
  for (bool batched : {false, true}) {
    INFO((batched ? "batched power iteration" : "per-layer power iteration"));
    Rng gen(2);
    SaganGenerator G(c, gen);
    check_tiny(G, g, "G", batched);
    SaganDiscriminator D(c, gen);
    check_tiny(D, g, "D", batched);
  }
}

TEST_CASE("Models run at 32, 64 and 128 with attention where configured", "[models]") {
  for (int64_t res : {32, 64, 128}) {
    INFO("resolution " << res);
    SaganConfig c;
    c.resolution = res;
    c.ch = 8;
    c.z_dim = 8;
    c.num_classes = 5;
    c.image_channels = 1;
    Rng gen(3);
    SaganGenerator G(c, gen);
    SaganDiscriminator D(c, gen);
    CHECK(G.attention_layers().size() == 1);
    CHECK(D.attention_layers().size() == 1);
    Tensor y = Tensor::from_vector(std::vector<int64_t>{4, 1}, {2});
    Tensor img = G.forward(Tensor::randn({2, 8}, gen), y);
    REQUIRE(img.shape() == Shape{2, 1, res, res});
    CHECK(max_abs(img) <= 1.0);
    Tensor score = D.forward(img, y);
    REQUIRE(score.shape() == Shape{2});
    sum(score).backward();
    for (auto& [name, p] : G.named_parameters()) {
      INFO(name);
      CHECK(p.grad().defined());
    }
  }
}

TEST_CASE("Unconditional models ignore labels; attention maps are reachable", "[models]") {
  SaganConfig c;
  c.ch = 8;
  c.z_dim = 4;
  c.num_classes = 0;
  c.pooled_attention = false;
  Rng gen(4);
  SaganGenerator G(c, gen);
  SaganDiscriminator D(c, gen);
  CHECK(D.state().count("embed.weight_orig") == 0);
  CHECK(G.state().count("blocks.0.bn1.weight") == 1);
  G.attention_layers()[0]->set_keep_attention_map(true);
  Tensor img = G.forward(Tensor::randn({2, 4}, gen));
  CHECK(G.attention_layers()[0]->last_attention_map().shape() == Shape{2, 256, 256});  // paper variant: S = N
  CHECK(D.forward(img).shape() == Shape{2});
}

TEST_CASE("Models name themselves and the shapes on bad input", "[models]") {
  SaganConfig c;
  c.ch = 8;
  c.z_dim = 4;
  c.num_classes = 3;
  Rng gen(5);
  SaganGenerator G(c, gen);
  SaganDiscriminator D(c, gen);
  Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  REQUIRE_THROWS_WITH(G.forward(Tensor::zeros({2, 5}), y),
                      Catch::Contains("SaganGenerator: z must be (B, 4), got [2, 5]"));
  REQUIRE_THROWS_WITH(
      G.forward(Tensor::zeros({2, 4})),
      Catch::Contains("SaganGenerator: a conditional model (3 classes) needs int64 labels of shape [2], got none"));
  REQUIRE_THROWS_WITH(D.forward(Tensor::zeros({2, 3, 64, 64}), y),
                      Catch::Contains("SaganDiscriminator: images must be (B, 3, 32, 32), got [2, 3, 64, 64]"));
  REQUIRE_THROWS_WITH(D.forward(Tensor::zeros({2, 3, 32, 32}), Tensor::zeros({2})),
                      Catch::Contains("needs int64 labels of shape [2], got float32 [2]"));
  // A label past the classes is named as a label of the model, not as an
  // embedding index deep inside a block.
  Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 3}, {2});
  REQUIRE_THROWS_WITH(G.forward(Tensor::zeros({2, 4}), bad),
                      Catch::Contains("SaganGenerator: labels[1] = 3 is not a class of the model (0 to 2)"));
  REQUIRE_THROWS_WITH(D.forward(Tensor::zeros({2, 3, 32, 32}), bad.slice(0, 1, 2).expand({2})),
                      Catch::Contains("SaganDiscriminator: labels[0] = 3 is not a class"));
}
