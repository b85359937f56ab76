// The FID Inception-v3 (models/quality/inception.h) against pytorch-fid's
// network built in PyTorch (tests/golden/make_eval_goldens.py) with identical
// deterministic weights: the weights come from a formula both sides compute,
// so no 96 MB file is needed. One image in float64 at a reduced input size,
// one in float32 through the full 299x299 path.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/io/safetensors.h"
#include "sagan/core/ops.h"
#include "sagan/models/quality/inception.h"
#include "tests/golden/eval_goldens.h"
#include "tests/support/gradcheck.h"

using namespace sagan;
using namespace sagan::quality;
using sagan::testing::golden::eval_goldens;

namespace {

uint32_t fnv1a32(const std::string& s) {
  uint32_t h = 0x811C9DC5u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x01000193u;
  }
  return h;
}

// u_j = fmix32(fnv1a32(name) + j * 0x9E3779B9) / 2^32, as the golden script.
std::vector<double> uniform01(const std::string& name, int64_t n) {
  std::vector<double> u(static_cast<size_t>(n));
  const uint32_t h = fnv1a32(name);
  for (int64_t j = 0; j < n; ++j) {
    uint32_t x = h + static_cast<uint32_t>(j) * 0x9E3779B9u;
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    u[static_cast<size_t>(j)] = x / 4294967296.0;
  }
  return u;
}

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

Tensor weight_value(const std::string& name, const Shape& shape) {
  int64_t n = 1, fan_in = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    n *= shape[i];
    if (i > 0) fan_in *= shape[i];
  }
  std::vector<double> v = uniform01(name, n);
  for (double& x : v) {
    if (ends_with(name, "conv.weight") || name == "fc.weight")
      x = (2 * x - 1) * std::sqrt(6.0 / static_cast<double>(fan_in));
    else if (ends_with(name, "bn.weight") || ends_with(name, "bn.running_var"))
      x = 0.8 + 0.4 * x;
    else
      x = 0.2 * (x - 0.5);
  }
  return Tensor::from_vector(v, shape, DType::F64);
}

const std::map<std::string, Tensor>& test_weights() {
  static const std::map<std::string, Tensor> w = [] {
    std::map<std::string, Tensor> m;
    for (auto& [name, shape] : FidInception::expected_tensors()) m.emplace(name, weight_value(name, shape));
    return m;
  }();
  return w;
}

Tensor test_image(const nlohmann::json& c) {
  const int64_t h = c.at("h").get<int64_t>(), w = c.at("w").get<int64_t>();
  std::vector<double> u = uniform01("image" + std::to_string(c.at("seed").get<int64_t>()), 3 * h * w);
  for (double& x : u) x = 2 * x - 1;
  return Tensor::from_vector(u, {1, 3, h, w}, DType::F64);
}

// max |a - b| <= rtol * max |b| (relative to the output's scale).
void check_rel(const Tensor& a, const std::vector<double>& b, double rtol, const char* what) {
  std::vector<double> av = a.to_vector();
  REQUIRE(av.size() == b.size());
  double scale = 0, worst = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < b.size(); ++i) worst = sagan::testing::max_keep_nan(worst, std::abs(av[i] - b[i]));
  INFO(what << ": max abs error " << worst << " for output scale " << scale);
  CHECK(worst <= rtol * scale);
}

}  // namespace

TEST_CASE("FID Inception expects exactly torchvision's tensor names and shapes", "[eval_inception]") {
  const auto& g = eval_goldens().at("inception");
  auto names = g.at("names").get<std::vector<std::string>>();
  auto expected = FidInception::expected_tensors();
  std::map<std::string, Shape> ours(expected.begin(), expected.end());
  std::vector<std::string> torch_names;
  for (const auto& n : names)
    if (!ends_with(n, "num_batches_tracked")) torch_names.push_back(n);
  CHECK(ours.size() == torch_names.size());
  for (const auto& n : torch_names) {
    INFO(n);
    REQUIRE(ours.count(n) == 1);
    CHECK(ours.at(n) == g.at("shapes").at(n).get<Shape>());
  }
}

TEST_CASE("FID Inception matches pytorch-fid's network in float64 (reduced input size)", "[eval_inception]") {
  const auto& c = eval_goldens().at("inception").at("cases").at(0);
  REQUIRE(c.at("size").get<int64_t>() == 99);
  FidInception net(test_weights(), "test weights", DType::F64);
  FidInception::Result r = net.forward(test_image(c), 99);
  REQUIRE(r.pool3.shape() == Shape{1, 2048});
  REQUIRE(r.logits.shape() == Shape{1, 1008});
  check_rel(r.pool3, c.at("pool3").get<std::vector<double>>(), 1e-9, "pool3");
  check_rel(r.logits, c.at("logits").get<std::vector<double>>(), 1e-9, "logits");
  check_rel(r.logits_bias, c.at("logits_bias").get<std::vector<double>>(), 1e-9, "logits + bias");
}

TEST_CASE("FID Inception matches pytorch-fid's network in float32 at 299x299", "[eval_inception]") {
  const auto& c = eval_goldens().at("inception").at("cases").at(1);
  REQUIRE(c.at("size").get<int64_t>() == 299);
  FidInception net(test_weights(), "test weights", DType::F32);
  // embed(): the default 299 path, float32 out; a gray copy of the image is repeated to RGB.
  FeatureNet::Output o = net.embed(test_image(c).to(DType::F32));
  REQUIRE(o.features.dtype() == DType::F32);
  check_rel(o.features, c.at("pool3").get<std::vector<double>>(), 1e-4, "pool3");
  check_rel(o.logits, c.at("logits").get<std::vector<double>>(), 1e-4, "logits");
  Tensor gray = test_image(c).slice(1, 0, 1).to(DType::F32);
  FeatureNet::Output og = net.embed(gray);
  FeatureNet::Output orgb = net.embed(gray.expand({1, 3, 32, 32}));
  FeatureNet::Output og2 = net.embed(gray);
  auto again = testing::allclose(og.features, og2.features, 0, 0);
  INFO(again.message);
  CHECK(again.ok);
  auto close = testing::allclose(og.features, orgb.features, 0, 0);
  INFO(close.message);
  CHECK(close.ok);
}

TEST_CASE("FID Inception weight errors name the tensor", "[eval_inception]") {
  std::map<std::string, Tensor> w = test_weights();
  w.erase("Mixed_6b.branch7x7_2.conv.weight");
  REQUIRE_THROWS_WITH(
      FidInception(w, "w.safetensors"),
      Catch::Contains("w.safetensors: tensor 'Mixed_6b.branch7x7_2.conv.weight'") && Catch::Contains("is missing"));
  w = test_weights();
  w["fc.weight"] = Tensor::zeros({1000, 2048}, DType::F64);
  REQUIRE_THROWS_WITH(FidInception(w, "w.safetensors"),
                      Catch::Contains("tensor 'fc.weight' has shape [1000, 2048], expected [1008, 2048]"));
  w = test_weights();
  w["AuxLogits.fc.weight"] = Tensor::zeros({3}, DType::F64);
  w["Conv2d_1a_3x3.bn.num_batches_tracked"] = Tensor::zeros({1}, DType::F64);  // ignored
  REQUIRE_THROWS_WITH(FidInception(w, "w.safetensors"), Catch::Contains("unexpected tensor 'AuxLogits.fc.weight'"));
  FidInception net(test_weights(), "test weights", DType::F32);
  REQUIRE_THROWS_WITH(net.forward(Tensor::zeros({1, 2, 80, 80}), 99),
                      Catch::Contains("FidInception: images must be (B, 1 or 3, H, W)"));
  REQUIRE_THROWS_WITH(net.forward(Tensor::zeros({1, 3, 80, 80}), 64), Catch::Contains("input size must be >= 75"));
}
