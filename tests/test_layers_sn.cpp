// Spectrally normalised layers: one power iteration by hand, eval holds u/v,
// sigma against an SVD, batched iteration equals per-layer iteration,
// float64 gradient checks with u, v held, and error messages.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/layers/conv2d.h"
#include "sagan/layers/embedding.h"
#include "sagan/layers/gblock.h"
#include "sagan/layers/linear.h"
#include "tests/support/assertions.h"
#include "tests/support/singular_value.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
// u, v converge to w's singular vectors, then are held (eval): with vectors
// from other weights sigma could be tiny and the check ill-conditioned.
void settle(nn::SpectralNormed& sn, const Tensor& w) {
  sn.set_tensor("weight_orig", w);
  NoGradGuard ng;
  for (int i = 0; i < 30; ++i) sn.normalized_weight();
  sn.eval();
}

Tensor t64(std::vector<double> v, Shape s) { return Tensor::from_vector(v, s, DType::F64); }

// Sets a module tensor's values (no autograd).
void assign(nn::Module& m, const std::string& name, const Tensor& v) {
  NoGradGuard ng;
  m.tensor(name).copy_(v);
}

std::vector<double> normalized(std::vector<double> x) {
  double n = 0;
  for (double e : x) n += e * e;
  n = std::sqrt(n);
  for (double& e : x) e /= n;
  return x;
}

}  // namespace

TEST_CASE("SNLinear training forward: one power iteration (v then u) by hand", "[layers][sn]") {
  Rng gen(1);
  nn::SNLinear lin(3, 2, gen);
  lin.to(DType::F64);
  std::vector<double> W{1, 2, -1, 0.5, -3, 2}, u0{0.6, 0.8}, b{0.1, -0.2};
  assign(lin, "weight_orig", t64(W, {2, 3}));
  assign(lin, "weight_u", t64(u0, {2}));
  assign(lin, "weight_v", t64(normalized({1, 1, 1}), {3}));
  assign(lin, "bias", t64(b, {2}));
  // v = normalize(W^T u), u = normalize(W v), sigma = u^T W v
  std::vector<double> v(3), u(2);
  for (int j = 0; j < 3; ++j) v[j] = W[j] * u0[0] + W[3 + j] * u0[1];
  v = normalized(v);
  for (int i = 0; i < 2; ++i) u[i] = W[i * 3] * v[0] + W[i * 3 + 1] * v[1] + W[i * 3 + 2] * v[2];
  u = normalized(u);
  double sigma = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) sigma += u[i] * W[i * 3 + j] * v[j];

  Tensor x = t64({1, -1, 2}, {1, 3});
  auto y = lin.forward(x).to_vector();
  CHECK(allclose(lin.tensor("weight_v"), v, 1e-12, 1e-14).ok);
  CHECK(allclose(lin.tensor("weight_u"), u, 1e-12, 1e-14).ok);
  CHECK(lin.last_sigma().item() == Approx(sigma).epsilon(1e-12));
  std::vector<double> want{(1 * 1 - 2 * 1 - 1 * 2) / sigma + b[0], (0.5 * 1 + 3 * 1 + 2 * 2) / sigma + b[1]};
  CHECK(y[0] == Approx(want[0]).epsilon(1e-12));
  CHECK(y[1] == Approx(want[1]).epsilon(1e-12));

  // Eval: no iteration, sigma from the stored vectors.
  lin.eval();
  auto u_before = lin.tensor("weight_u").to_vector();
  auto y2 = lin.forward(x).to_vector();
  CHECK(lin.tensor("weight_u").to_vector() == u_before);
  CHECK(lin.last_sigma().item() == Approx(sigma).epsilon(1e-12));
  CHECK(y2[0] == Approx(want[0]).epsilon(1e-12));
}

TEST_CASE("Spectral norm sigma converges to the largest singular value (Eigen SVD)", "[layers][sn]") {
  Rng gen(2);
  nn::SNConv2d conv(3, 5, 3, gen);
  conv.to(DType::F64);
  for (int i = 0; i < 200; ++i) conv.normalized_weight();
  double s1 = largest_singular_value(conv.weight_matrix());
  CHECK(conv.last_sigma().item() == Approx(s1).epsilon(1e-10));
  // W / sigma then has spectral norm 1.
  Tensor wn;
  {
    NoGradGuard ng;
    wn = conv.normalized_weight();
  }
  CHECK(largest_singular_value(wn.view({5, 27})) == Approx(1.0).epsilon(1e-10));

  nn::SNEmbedding emb(4, 6, gen);
  emb.to(DType::F64);
  for (int i = 0; i < 200; ++i) emb.normalized_weight();
  CHECK(emb.u().shape() == Shape{4});
  CHECK(emb.v().shape() == Shape{6});
  CHECK(emb.last_sigma().item() == Approx(largest_singular_value(emb.weight_matrix())).epsilon(1e-10));
}

TEST_CASE("power_iterate_all: one batched call equals each layer iterating itself", "[layers][sn]") {
  Rng g1(3), g2(3);
  nn::GBlock a(4, 3, 2, g1), b(4, 3, 2, g2);
  a.to(DType::F64);
  b.to(DType::F64);
  Rng gx(4);
  Tensor x = randn64({2, 4, 3, 5}, gx, false);
  Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  CHECK(nn::power_iterate_all(a) == 3);
  for (auto* sn : nn::spectral_norm_layers(a)) CHECK(sn->iterated());
  auto ya = a.forward(x, y).to_vector();
  for (auto* sn : nn::spectral_norm_layers(a)) CHECK_FALSE(sn->iterated());  // consumed
  auto yb = b.forward(x, y).to_vector();
  CHECK(allclose(a.forward(x, y), b.forward(x, y), 1e-14, 1e-14).ok);  // the next forward iterates again
  REQUIRE(ya.size() == yb.size());
  CHECK(allclose(t64(ya, {static_cast<int64_t>(ya.size())}), yb, 1e-14, 1e-14).ok);
  for (auto& [n, t] : b.named_buffers()) CHECK(allclose(a.tensor(n), t, 1e-14, 1e-15).ok);
  // Eval layers are not iterated.
  a.eval();
  CHECK(nn::power_iterate_all(a) == 0);
}

TEST_CASE("A later training forward does not change an earlier graph's gradient", "[layers][sn]") {
  // D runs on reals then on fakes before one backward: the second forward
  // iterates u, v in place, the first graph must keep its own constants.
  Rng g1(5), g2(5), gx(6);
  nn::SNLinear a(4, 3, g1), b(4, 3, g2);
  a.to(DType::F64);
  b.to(DType::F64);
  Tensor x1 = randn64({2, 4}, gx, false), x2 = randn64({2, 4}, gx, false);
  Tensor ya = a.forward(x1);
  a.forward(x2);
  sum(mul(ya, ya)).backward();
  Tensor yb = b.forward(x1);
  sum(mul(yb, yb)).backward();
  CHECK(allclose(a.tensor("weight_orig").grad(), b.tensor("weight_orig").grad(), 1e-13, 1e-14).ok);
}

TEST_CASE("SN layer gradients with u, v held (eval mode)", "[layers][sn][gradcheck]") {
  Rng gen(7);
  SECTION("SNLinear") {
    nn::SNLinear lin(5, 3, gen);
    lin.to(DType::F64);
    Tensor x = randn64({2, 5}, gen);
    Tensor w = randn64({3, 5}, gen), b = randn64({3}, gen);
    settle(lin, w);
    REQUIRE_GRADCHECK(
        [&](const auto& in) {
          lin.set_tensor("weight_orig", in[1]);
          lin.set_tensor("bias", in[2]);
          return lin.forward(in[0]);
        },
        x, w, b);
  }
  SECTION("SNConv2d") {
    nn::SNConv2d conv(3, 4, 3, gen);
    conv.to(DType::F64);
    Tensor x = randn64({2, 3, 5, 7}, gen);
    Tensor w = randn64({4, 3, 3, 3}, gen), b = randn64({4}, gen);
    settle(conv, w);
    REQUIRE_GRADCHECK(
        [&](const auto& in) {
          conv.set_tensor("weight_orig", in[1]);
          conv.set_tensor("bias", in[2]);
          return conv.forward(in[0]);
        },
        x, w, b);
  }
  SECTION("SNEmbedding") {
    nn::SNEmbedding emb(5, 3, gen);
    emb.to(DType::F64);
    Tensor w = randn64({5, 3}, gen);
    settle(emb, w);
    Tensor idx = Tensor::from_vector(std::vector<int64_t>{4, 0, 4, 2}, {4});
    REQUIRE_GRADCHECK(
        [&](const auto& in) {
          emb.set_tensor("weight_orig", in[0]);
          return emb.forward(idx);
        },
        w);
  }
}

TEST_CASE("SN layers reject bad inputs naming the layer and shapes", "[layers][sn]") {
  Rng gen(8);
  nn::SNConv2d conv(3, 4, 3, gen);
  REQUIRE_THROWS_WITH(conv.forward(Tensor::zeros({2, 5, 4, 4})),
                      Catch::Contains("SNConv2d: input must be (B, 3, H, W), got [2, 5, 4, 4]"));
  REQUIRE_THROWS_WITH(nn::SNConv2d(3, 4, 2, gen),
                      Catch::Contains("SNConv2d: need positive channels and an odd kernel"));
  // Sizes of 0 or below: named by the layer, not by the vectors it draws first.
  REQUIRE_THROWS_WITH(nn::SNConv2d(3, 4, 0, gen), Catch::StartsWith("SNConv2d: need positive channels"));
  REQUIRE_THROWS_WITH(nn::SNConv2d(0, 4, 3, gen), Catch::StartsWith("SNConv2d: need positive channels"));
  REQUIRE_THROWS_WITH(nn::SNLinear(0, 4, gen), "SNLinear: need positive in and out features, got 0 and 4");
  REQUIRE_THROWS_WITH(nn::SNLinear(-3, 4, gen), "SNLinear: need positive in and out features, got -3 and 4");
  REQUIRE_THROWS_WITH(nn::SNEmbedding(0, 4, gen), "SNEmbedding: need positive sizes, got 0 x 4");
  nn::SNLinear lin(3, 2, gen);
  REQUIRE_THROWS_WITH(lin.forward(Tensor::zeros({2, 4})),
                      Catch::Contains("SNLinear: input must be (B, 3), got [2, 4]"));
  nn::SNEmbedding emb(3, 2, gen);
  REQUIRE_THROWS_WITH(emb.forward(Tensor::zeros({2})),
                      Catch::Contains("SNEmbedding: labels must be an int64 vector (B), got float32 [2]"));
}
