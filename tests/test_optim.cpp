// Optimiser update ops: Adam against a float64 loop of its formula and
// against torch.optim.Adam goldens (betas (0, 0.9) and (0.5, 0.999)), EMA
// against its formula, and error messages naming the offending tensor.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "tests/golden/attention_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

// The textbook form, element by element in float64:
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr mhat / (sqrt(vhat) + eps).
void adam_reference(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                    std::vector<double>& v, const AdamHyper& h) {
  const double bc1 = 1 - std::pow(h.beta1, double(h.step)), bc2 = 1 - std::pow(h.beta2, double(h.step));
  for (size_t i = 0; i < p.size(); ++i) {
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    p[i] -= h.lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + h.eps);
  }
}

}  // namespace

TEST_CASE("adam_update matches a float64 loop of the formula", "[optim]") {
  Rng gen(31);
  // Odd shapes, a tensor big enough for the parallel chunked path (> 32768
  // elements), and a strided gradient.
  std::vector<Shape> shapes{{3, 5, 7}, {1}, {41000}, {6, 4}};
  for (auto [b1, b2] : {std::pair{0.0, 0.9}, std::pair{0.5, 0.999}}) {
    AdamHyper h;
    h.lr = 3e-3, h.beta1 = b1, h.beta2 = b2, h.eps = 1e-8;
    std::vector<Tensor> params, m, v;
    std::vector<std::vector<double>> rp, rm, rv;
    for (const Shape& s : shapes) {
      params.push_back(randn64(s, gen));  // leaves that require grad, like parameters
      m.push_back(Tensor::zeros(s, DType::F64));
      v.push_back(Tensor::zeros(s, DType::F64));
      rp.push_back(params.back().to_vector());
      rm.emplace_back(rp.back().size(), 0.0);
      rv.emplace_back(rp.back().size(), 0.0);
    }
    for (int64_t step = 1; step <= 4; ++step) {
      h.step = step;
      std::vector<Tensor> grads;
      for (const Shape& s : shapes) grads.push_back(mul(randn64(s, gen, false), 0.3 * double(step)));
      grads[3] = randn64({4, 6}, gen, false).t();  // (6,4) view, not contiguous
      adam_update(params, grads, m, v, h);
      for (size_t i = 0; i < shapes.size(); ++i) adam_reference(rp[i], grads[i].to_vector(), rm[i], rv[i], h);
    }
    REQUIRE(grad_enabled());
    for (size_t i = 0; i < shapes.size(); ++i) {
      INFO("betas (" << b1 << ", " << b2 << ") tensor " << i);
      REQUIRE(params[i].requires_grad());
      REQUIRE_CLOSE(params[i], rp[i], 1e-13, 1e-14);
      REQUIRE_CLOSE(m[i], rm[i], 1e-14, 1e-15);
      REQUIRE_CLOSE(v[i], rv[i], 1e-14, 1e-15);
    }
  }
}

TEST_CASE("adam_update matches torch.optim.Adam", "[optim][golden]") {
  for (const char* name : {"adam_b0_0.9_f64", "adam_b0.5_0.999_f64", "adam_b0_0.9_f32"}) {
    INFO(name);
    const auto& c = attention_case(name);
    const DType dt = c.at("dtype").get<std::string>() == "float32" ? DType::F32 : DType::F64;
    const double tol = dt == DType::F64 ? 1e-14 : 1e-6;
    AdamHyper h;
    h.lr = c.at("lr"), h.beta1 = c.at("beta1"), h.beta2 = c.at("beta2"), h.eps = c.at("eps");
    const auto shapes = c.at("shapes").get<std::vector<Shape>>();
    std::vector<Tensor> params, m, v;
    for (size_t i = 0; i < shapes.size(); ++i) {
      params.push_back(
          Tensor::from_vector(c.at("p0")[i].get<std::vector<double>>(), shapes[i], dt).set_requires_grad());
      m.push_back(Tensor::zeros(shapes[i], dt));
      v.push_back(Tensor::zeros(shapes[i], dt));
    }
    const int64_t steps = c.at("steps");
    for (int64_t t = 0; t < steps; ++t) {
      h.step = t + 1;
      std::vector<Tensor> grads;
      for (size_t i = 0; i < shapes.size(); ++i)
        grads.push_back(Tensor::from_vector(c.at("grads")[t][i].get<std::vector<double>>(), shapes[i], dt));
      adam_update(params, grads, m, v, h);
      for (size_t i = 0; i < shapes.size(); ++i) {
        INFO("step " << t + 1 << " tensor " << i);
        REQUIRE_CLOSE(params[i], c.at("params_after")[t][i].get<std::vector<double>>(), tol, tol);
      }
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      REQUIRE_CLOSE(m[i], c.at("m")[i].get<std::vector<double>>(), tol, tol);
      REQUIRE_CLOSE(v[i], c.at("v")[i].get<std::vector<double>>(), tol, tol);
    }
  }
}

TEST_CASE("ema_update matches its formula", "[optim]") {
  Rng gen(32);
  std::vector<Shape> shapes{{2, 3, 5}, {40001}, {7}};
  for (double decay : {0.999, 0.5, 0.0, 1.0}) {
    INFO("decay " << decay);
    std::vector<Tensor> ema, params;
    for (const Shape& s : shapes) {
      ema.push_back(randn64(s, gen, false));
      params.push_back(randn64(s, gen));
    }
    params[2] = randn64({14}, gen, false).slice(0, 0, 14, 2);  // stride 2
    std::vector<std::vector<double>> expect;
    for (size_t i = 0; i < shapes.size(); ++i) {
      std::vector<double> e = ema[i].to_vector(), p = params[i].to_vector();
      for (size_t j = 0; j < e.size(); ++j) e[j] = decay * e[j] + (1 - decay) * p[j];
      expect.push_back(e);
    }
    ema_update(ema, params, decay);
    for (size_t i = 0; i < shapes.size(); ++i) REQUIRE_CLOSE(ema[i], expect[i], 1e-15, 1e-15);
  }
  // float32, with a genuinely strided parameter view.
  Tensor base = Tensor::randn({5, 3}, gen);
  std::vector<Tensor> ema{Tensor::zeros({3, 5})}, params{base.t()};
  REQUIRE_FALSE(params[0].is_contiguous());
  ema_update(ema, params, 0.75);
  REQUIRE_CLOSE(ema[0], mul(base.t().contiguous(), 0.25), 1e-6, 1e-7);
}

TEST_CASE("a gate holding NaN holds back adam_update and ema_update; one holding 0 lets them through", "[optim]") {
  Rng gen(33);
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(dtype_name(dt));
    auto make = [&](const Shape& s, bool leaf) {
      Tensor t = Tensor::randn(s, gen, dt);
      return leaf ? t.set_requires_grad() : t;
    };
    std::vector<Tensor> p{make({3, 4}, true), make({5}, true)}, g{make({3, 4}, false), make({5}, false)};
    std::vector<Tensor> m{make({3, 4}, false), make({5}, false)}, v{abs(make({3, 4}, false)), abs(make({5}, false))};
    auto snapshot = [](const std::vector<Tensor>& ts) {
      std::vector<std::vector<double>> out;
      for (const Tensor& t : ts) out.push_back(t.to_vector());
      return out;
    };
    auto copies = [](const std::vector<Tensor>& ts) {
      std::vector<Tensor> out;
      for (const Tensor& t : ts) out.push_back(t.detach().clone().set_requires_grad(t.requires_grad()));
      return out;
    };
    AdamHyper h;
    h.lr = 0.1, h.beta1 = 0.5, h.step = 2;
    std::vector<Tensor> p2 = copies(p), m2 = copies(m), v2 = copies(v);
    const auto p0 = snapshot(p), m0 = snapshot(m), v0 = snapshot(v);
    adam_update(p, g, m, v, h, Tensor::scalar(std::nan(""), dt));
    CHECK(snapshot(p) == p0);
    CHECK(snapshot(m) == m0);
    CHECK(snapshot(v) == v0);
    adam_update(p, g, m, v, h, Tensor::scalar(0.0, dt));  // open: the plain update, bit for bit
    adam_update(p2, g, m2, v2, h);
    CHECK(snapshot(p) == snapshot(p2));
    CHECK(snapshot(m) == snapshot(m2));
    CHECK(snapshot(p) != p0);

    // Factors from a tensor (a replayed graph's): the same update as h.step's.
    std::vector<Tensor> p3 = copies(p), m3 = copies(m), v3 = copies(v), p4 = copies(p), m4 = copies(m),
                        v4 = copies(v);
    h.step = 3;
    const AdamScales sc = adam_scales(h, 3);
    adam_update(p3, g, m3, v3, h);
    AdamHyper wrong = h;
    wrong.step = 1;  // overridden by the scales
    adam_update(p4, g, m4, v4, wrong, Tensor(), Tensor::from_vector({sc.step_size, sc.sqrt_bc2}, {2}, dt));
    CHECK(snapshot(p3) == snapshot(p4));
    CHECK(snapshot(v3) == snapshot(v4));
    REQUIRE_THROWS_WITH(adam_update(p4, g, m4, v4, h, Tensor(), Tensor::zeros({3}, dt)),
                        Catch::Contains("adam_update: scales must be 2 contiguous elements"));

    std::vector<Tensor> e{make({3, 4}, false)}, e2 = copies(e), src{make({3, 4}, false)};
    const auto e0 = snapshot(e);
    ema_update(e, src, 0.9, Tensor::scalar(std::nan(""), dt));
    CHECK(snapshot(e) == e0);
    ema_update(e, src, 0.9, Tensor::scalar(0.0, dt));
    ema_update(e2, src, 0.9);
    CHECK(snapshot(e) == snapshot(e2));
    CHECK(snapshot(e) != e0);
  }
}

TEST_CASE("optimiser update errors name the op and the offending tensor", "[optim][errors]") {
  auto leaf = [](const Shape& s, DType dt = DType::F32) { return Tensor::zeros(s, dt).set_requires_grad(); };
  std::vector<Tensor> p{leaf({2, 3}), leaf({4})}, g{Tensor::zeros({2, 3}), Tensor::zeros({4})},
      m{Tensor::zeros({2, 3}), Tensor::zeros({4})}, v{Tensor::zeros({2, 3}), Tensor::zeros({4})};
  AdamHyper h;
  REQUIRE_NOTHROW(adam_update(p, g, m, v, h));

  std::vector<Tensor> g1{Tensor::zeros({2, 3})};
  REQUIRE_THROWS_WITH(adam_update(p, g1, m, v, h), Catch::Contains("adam_update: list lengths") &&
                                                       Catch::Contains("2 params") && Catch::Contains("1 grads"));
  std::vector<Tensor> gbad{Tensor::zeros({2, 3}), Tensor::zeros({5})};
  REQUIRE_THROWS_WITH(adam_update(p, gbad, m, v, h),
                      Catch::Contains("adam_update: grads[1]") && Catch::Contains("[5]") && Catch::Contains("[4]"));
  std::vector<Tensor> mbad{Tensor::zeros({2, 3}, DType::F64), Tensor::zeros({4})};
  REQUIRE_THROWS_WITH(adam_update(p, g, mbad, v, h),
                      Catch::Contains("adam_update: m[0]") && Catch::Contains("float64") && Catch::Contains("float32"));
  std::vector<Tensor> pmix{leaf({2, 3}), leaf({4}, DType::F64)};
  REQUIRE_THROWS_WITH(adam_update(pmix, g, m, v, h),
                      Catch::Contains("adam_update: params[1]") && Catch::Contains("float64"));
  Tensor x = leaf({2, 3});
  std::vector<Tensor> pnonleaf{mul(x, 2.0), leaf({4})};
  REQUIRE_THROWS_WITH(adam_update(pnonleaf, g, m, v, h),
                      Catch::Contains("adam_update: params[0]") && Catch::Contains("leaf"));
  std::vector<Tensor> vstrided{Tensor::zeros({3, 2}).t(), Tensor::zeros({4})};
  REQUIRE_THROWS_WITH(adam_update(p, g, m, vstrided, h),
                      Catch::Contains("adam_update: v[0]") && Catch::Contains("contiguous"));
  std::vector<Tensor> pint{Tensor::zeros({2, 3}, DType::I64), leaf({4})};
  REQUIRE_THROWS_WITH(adam_update(pint, g, m, v, h),
                      Catch::Contains("adam_update: params[0]") && Catch::Contains("int64"));
  AdamHyper h0;
  h0.step = 0;
  REQUIRE_THROWS_WITH(adam_update(p, g, m, v, h0), Catch::Contains("adam_update: step"));
  AdamHyper hb;
  hb.beta2 = 1.0;
  REQUIRE_THROWS_WITH(adam_update(p, g, m, v, hb), Catch::Contains("adam_update: betas"));

  std::vector<Tensor> e{Tensor::zeros({2, 3}), Tensor::zeros({4})};
  REQUIRE_THROWS_WITH(ema_update(e, g1, 0.9), Catch::Contains("ema_update: list lengths"));
  REQUIRE_THROWS_WITH(ema_update(e, gbad, 0.9), Catch::Contains("ema_update: params[1]") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(ema_update(e, g, 1.5), Catch::Contains("ema_update: decay"));
  std::vector<Tensor> e64{Tensor::zeros({2, 3}), Tensor::zeros({4}, DType::F64)};
  REQUIRE_THROWS_WITH(ema_update(e64, g, 0.9), Catch::Contains("ema_update: ema[1]") && Catch::Contains("float64"));
  // A gate is one element of the tensors' dtype.
  REQUIRE_THROWS_WITH(adam_update(p, g, m, v, h, Tensor::zeros({2})),
                      Catch::Contains("adam_update: gate must have one element"));
  REQUIRE_THROWS_WITH(ema_update(e, g, 0.9, Tensor::zeros({}, DType::F64)),
                      Catch::Contains("ema_update: gate is float64") && Catch::Contains("expected float32"));
}
