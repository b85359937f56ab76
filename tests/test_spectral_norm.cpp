// Spectral-norm helpers: power_iteration against PyTorch's update order and
// an independent SVD (Eigen's Jacobi SVD), its eps guard, and the gradient of
// spectral_sigma = u^T W v with respect to W.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "tests/golden/attention_goldens.h"
#include "tests/support/assertions.h"
#include "tests/support/singular_value.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

Tensor unit(Tensor x) {
  NoGradGuard ng;
  return mul(x, 1.0 / std::sqrt(sum(square(x)).item()));
}

double sigma_of(const Tensor& w, const Tensor& u, const Tensor& v) {
  NoGradGuard ng;
  return spectral_sigma(w, u, v).item();
}

}  // namespace

TEST_CASE("power_iteration matches torch.nn.utils.spectral_norm's one step", "[spectral_norm][golden]") {
  for (const char* name : {"spectral_linear", "spectral_conv"}) {
    INFO(name);
    const auto& c = attention_case(name);
    for (DType dt : {DType::F64, DType::F32}) {
      const double tol = dt == DType::F64 ? 1e-13 : 2e-6;
      Tensor w = golden_tensor(c, "w", dt);
      std::vector<Tensor> ws{w}, us{golden_tensor(c, "u0", dt)}, vs{golden_tensor(c, "v0", dt)};
      power_iteration(ws, us, vs);
      REQUIRE_CLOSE(vs[0], golden_tensor(c, "v1"), tol, tol);
      REQUIRE_CLOSE(us[0], golden_tensor(c, "u1"), tol, tol);
      const double sigma = sigma_of(w, us[0], vs[0]);
      CHECK(sigma == Approx(c.at("sigma").get<double>()).epsilon(tol));
      Tensor wsn = mul(w, 1.0 / sigma);
      REQUIRE_CLOSE(wsn, golden_tensor(c, "weight_sn"), 10 * tol, 10 * tol);
    }
  }
}

TEST_CASE("power_iteration converges to the largest singular value", "[spectral_norm]") {
  Rng gen(21);
  // Several matrices in one call, odd sizes, both orientations.
  std::vector<Tensor> ws{randn64({5, 7}, gen, false), randn64({9, 4}, gen, false), randn64({6, 27}, gen, false)};
  std::vector<Tensor> us, vs;
  for (const Tensor& w : ws) {
    us.push_back(unit(randn64({w.size(0)}, gen, false)));
    vs.push_back(unit(randn64({w.size(1)}, gen, false)));
  }
  for (int it = 0; it < 300; ++it) power_iteration(ws, us, vs);
  for (size_t i = 0; i < ws.size(); ++i) {
    INFO("matrix " << i << " " << shape_str(ws[i].shape()));
    CHECK(sigma_of(ws[i], us[i], vs[i]) == Approx(largest_singular_value(ws[i])).epsilon(1e-10));
    CHECK(std::sqrt(sum(square(us[i])).item()) == Approx(1.0).epsilon(1e-14));
    CHECK(std::sqrt(sum(square(vs[i])).item()) == Approx(1.0).epsilon(1e-14));
  }
  // And the golden matrices against torch.linalg.svdvals.
  for (const char* name : {"spectral_linear", "spectral_conv"}) {
    const auto& c = attention_case(name);
    std::vector<Tensor> w{golden_tensor(c, "w")}, u{golden_tensor(c, "u0")}, v{golden_tensor(c, "v0")};
    for (int it = 0; it < 300; ++it) power_iteration(w, u, v);
    CHECK(sigma_of(w[0], u[0], v[0]) == Approx(c.at("sigma_max").get<double>()).epsilon(1e-10));
  }
}

TEST_CASE("power_iteration keeps a zero u at zero (eps guard)", "[spectral_norm]") {
  Rng gen(22);
  std::vector<Tensor> w{randn64({4, 3}, gen, false)}, u{Tensor::zeros({4}, DType::F64)},
      v{Tensor::ones({3}, DType::F64)};
  power_iteration(w, u, v, 1e-12);
  for (double x : u[0].to_vector()) REQUIRE(x == 0.0);
  for (double x : v[0].to_vector()) REQUIRE(x == 0.0);
  // A zero matrix as well, in float32.
  std::vector<Tensor> wz{Tensor::zeros({2, 5})}, uz{Tensor::ones({2})}, vz{Tensor::ones({5})};
  power_iteration(wz, uz, vz);
  for (double x : uz[0].to_vector()) REQUIRE(x == 0.0);
  for (double x : vz[0].to_vector()) REQUIRE(x == 0.0);
  CHECK(sigma_of(wz[0], uz[0], vz[0]) == 0.0);
}

TEST_CASE("power_iteration reads strided weights and leaves them untouched", "[spectral_norm]") {
  Rng gen(23);
  Tensor wt = randn64({7, 5}, gen, false);
  Tensor w = wt.t();  // (5,7) view, not contiguous
  Tensor wc = w.contiguous();
  Tensor u0 = unit(randn64({5}, gen, false)), v0 = unit(randn64({7}, gen, false));
  std::vector<Tensor> a{w}, ua{u0.clone()}, va{v0.clone()};
  std::vector<Tensor> b{wc}, ub{u0.clone()}, vb{v0.clone()};
  power_iteration(a, ua, va);
  power_iteration(b, ub, vb);
  CHECK(ua[0].to_vector() == ub[0].to_vector());
  CHECK(va[0].to_vector() == vb[0].to_vector());
  CHECK(w.to_vector() == wc.to_vector());
}

TEST_CASE("spectral_sigma gradient flows to W only", "[spectral_norm][gradcheck]") {
  Rng gen(24);
  Tensor w = randn64({5, 7}, gen);
  Tensor u = unit(randn64({5}, gen, false)), v = unit(randn64({7}, gen, false));
  REQUIRE_GRADCHECK([](const auto& in) { return spectral_sigma(in[0], in[1], in[2]); }, w, u, v);
  // W / sigma, the way a layer uses it, through a conv-shaped weight.
  Tensor w4 = randn64({3, 2, 3, 3}, gen);
  Tensor u3 = unit(randn64({3}, gen, false)), v18 = unit(randn64({18}, gen, false));
  REQUIRE_GRADCHECK(
      [](const auto& in) {
        Tensor w2 = in[0].reshape({3, 18});
        return div(in[0], spectral_sigma(w2, in[1], in[2]));
      },
      w4, u3, v18);
  // u and v never receive gradients even when they require them.
  Tensor ug = unit(randn64({5}, gen, false)).set_requires_grad(),
         vg = unit(randn64({7}, gen, false)).set_requires_grad();
  Tensor w2 = randn64({5, 7}, gen);
  spectral_sigma(w2, ug, vg).backward();
  CHECK_FALSE(ug.grad().defined());
  CHECK_FALSE(vg.grad().defined());
  // dW = u v^T for a unit upstream gradient.
  std::vector<double> uv = ug.to_vector(), vv = vg.to_vector(), gw = w2.grad().to_vector();
  for (size_t i = 0; i < 5; ++i)
    for (size_t j = 0; j < 7; ++j) CHECK(gw[i * 7 + j] == Approx(uv[i] * vv[j]).epsilon(1e-15));
}

TEST_CASE("spectral norm errors name the op and shapes", "[spectral_norm][errors]") {
  std::vector<Tensor> w{Tensor::zeros({4, 3})}, u{Tensor::zeros({4})}, v{Tensor::zeros({3})};
  std::vector<Tensor> bad_u{Tensor::zeros({5})}, bad_v{Tensor::zeros({2})}, none;
  REQUIRE_THROWS_WITH(power_iteration(w, bad_u, v),
                      Catch::Contains("power_iteration: u[0]") && Catch::Contains("[4]") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(power_iteration(w, u, bad_v),
                      Catch::Contains("power_iteration: v[0]") && Catch::Contains("[3]") && Catch::Contains("[2]"));
  REQUIRE_THROWS_WITH(power_iteration(w, none, v), Catch::Contains("power_iteration: list lengths"));
  std::vector<Tensor> w3{Tensor::zeros({4, 3, 1})};
  REQUIRE_THROWS_WITH(power_iteration(w3, u, v), Catch::Contains("power_iteration: w[0]") && Catch::Contains("2-d") &&
                                                     Catch::Contains("[4, 3, 1]"));
  std::vector<Tensor> u64{Tensor::zeros({4}, DType::F64)};
  REQUIRE_THROWS_WITH(power_iteration(w, u64, v), Catch::Contains("power_iteration") && Catch::Contains("float64"));
  std::vector<Tensor> ugrad{Tensor::zeros({4}).set_requires_grad()};
  REQUIRE_THROWS_WITH(power_iteration(w, ugrad, v),
                      Catch::Contains("power_iteration: u[0]") && Catch::Contains("grad"));
  REQUIRE_THROWS_WITH(power_iteration(w, u, v, 0.0), Catch::Contains("power_iteration: eps"));

  Tensor w2 = Tensor::zeros({4, 3});
  REQUIRE_THROWS_WITH(spectral_sigma(w2, Tensor::zeros({3}), Tensor::zeros({3})),
                      Catch::Contains("spectral_sigma: u") && Catch::Contains("[4, 3]") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(spectral_sigma(w2, Tensor::zeros({4}), Tensor::zeros({4})),
                      Catch::Contains("spectral_sigma: v") && Catch::Contains("[4, 3]"));
  REQUIRE_THROWS_WITH(spectral_sigma(Tensor::zeros({12}), Tensor::zeros({4}), Tensor::zeros({3})),
                      Catch::Contains("spectral_sigma") && Catch::Contains("2-d") && Catch::Contains("[12]"));
  REQUIRE_THROWS_WITH(spectral_sigma(w2, Tensor::zeros({4}, DType::F64), Tensor::zeros({3})),
                      Catch::Contains("spectral_sigma") && Catch::Contains("dtype"));
}
