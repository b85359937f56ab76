// The attention op softmax(q k^T) v (no scaling): forward and backward
// against a naive composition of elementwise ops and against PyTorch goldens,
// large logits, the map, strided inputs and error messages. Gradient checks
// at odd sizes and across query/key block edges: tests/ops/op_cases.cpp.
#include <catch2/catch.hpp>

#include <cmath>

#include "sagan/core/ops.h"
#include "tests/golden/attention_goldens.h"
#include "tests/support/assertions.h"
#include "tests/support/omp_threads.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

// scores (B,N,S) = sum_d q (B,N,1,d) * k (B,1,S,d): matmul without matmul.
Tensor naive_scores(const Tensor& q, const Tensor& k) { return sum(mul(q.unsqueeze(2), k.unsqueeze(1)), {3}); }

// out (B,N,dv) = sum_s P (B,N,S,1) * v (B,1,S,dv); differentiable end to end.
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  Tensor p = softmax(naive_scores(q, k), -1);
  return sum(mul(p.unsqueeze(3), v.unsqueeze(1)), {2});
}

// Gradients of sum(out * gy) with respect to q, k, v.
std::vector<Tensor> grads_of(const Tensor& out, const Tensor& gy, std::vector<Tensor> in) {
  for (Tensor& t : in) t.set_grad(Tensor());
  sum(mul(out, gy)).backward();
  return {in[0].grad(), in[1].grad(), in[2].grad()};
}

}  // namespace

TEST_CASE("attention matches a naive float64 composition, several blocks", "[attention]") {
  // 130 query rows = 3 blocks, 67 keys = 2 key blocks; large enough that the
  // kernel takes its OpenMP path.
  Rng gen(12);
  Tensor q = randn64({2, 130, 5}, gen), k = randn64({2, 67, 5}, gen), v = randn64({2, 67, 3}, gen);
  Tensor gy = Tensor::randn({2, 130, 3}, gen, DType::F64);
  AttentionResult r = attention(q, k, v, true);
  auto g = grads_of(r.out, gy, {q, k, v});
  Tensor ref = naive_attention(q, k, v);
  auto gref = grads_of(ref, gy, {q, k, v});
  REQUIRE_CLOSE(r.out, ref, 1e-12, 1e-12);
  Tensor pref;
  {
    NoGradGuard ng;
    pref = softmax(naive_scores(q, k), -1);
  }
  REQUIRE_CLOSE(r.map, pref, 1e-12, 1e-13);
  for (size_t i = 0; i < 3; ++i) {
    INFO("input " << i);
    REQUIRE_CLOSE(g[i], gref[i], 1e-11, 1e-11);
  }
}

TEST_CASE("attention results do not depend on the number of threads", "[attention]") {
  // Every output row has one writer (forward, and both backward passes), so
  // 1 and 3 threads give bit-identical values.
  Rng gen(16);
  Tensor q = Tensor::randn({3, 100, 8}, gen).set_requires_grad(),
         k = Tensor::randn({3, 70, 8}, gen).set_requires_grad(),
         v = Tensor::randn({3, 70, 16}, gen).set_requires_grad();
  Tensor gy = Tensor::randn({3, 100, 16}, gen);
  auto run = [&](int threads) {
    AttentionResult r;
    std::vector<Tensor> g;
    {
      const testing::OmpThreads scope(threads);
      r = attention(q, k, v, true);
      g = grads_of(r.out, gy, {q, k, v});
    }
    std::vector<std::vector<float>> all{r.out.to_float_vector(), r.map.to_float_vector()};
    for (const Tensor& t : g) all.push_back(t.to_float_vector());
    return all;
  };
  auto one = run(1), three = run(3);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("tensor " << i);
    CHECK(one[i] == three[i]);
  }
}

TEST_CASE("attention float32 agrees with float64", "[attention]") {
  Rng gen(13);
  Tensor q = randn64({2, 70, 4}, gen, false), k = randn64({2, 33, 4}, gen, false), v = randn64({2, 33, 6}, gen, false);
  Tensor gy = Tensor::randn({2, 70, 6}, gen, DType::F64);
  Tensor q32 = q.to(DType::F32).set_requires_grad(), k32 = k.to(DType::F32).set_requires_grad(),
         v32 = v.to(DType::F32).set_requires_grad();
  q.set_requires_grad(), k.set_requires_grad(), v.set_requires_grad();
  Tensor o64 = attention(q, k, v).out, o32 = attention(q32, k32, v32).out;
  REQUIRE(o32.dtype() == DType::F32);
  REQUIRE_CLOSE(o32, o64, 1e-4, 1e-5);
  auto g64 = grads_of(o64, gy, {q, k, v});
  auto g32 = grads_of(o32, gy.to(DType::F32), {q32, k32, v32});
  for (size_t i = 0; i < 3; ++i) {
    INFO("input " << i);
    REQUIRE_CLOSE(g32[i], g64[i], 1e-3, 1e-4);
  }
}

TEST_CASE("attention matches PyTorch goldens", "[attention][golden]") {
  for (const char* name : {"attention_odd", "attention_square", "attention_large_logits"}) {
    INFO(name);
    const auto& c = attention_case(name);
    Tensor q = golden_tensor(c, "q", DType::F64, true), k = golden_tensor(c, "k", DType::F64, true),
           v = golden_tensor(c, "v", DType::F64, true);
    AttentionResult r = attention(q, k, v, true);
    REQUIRE_CLOSE(r.out, golden_tensor(c, "out"), 1e-12, 1e-12);
    REQUIRE_CLOSE(r.map, golden_tensor(c, "map"), 1e-12, 1e-14);
    auto g = grads_of(r.out, golden_tensor(c, "gy"), {q, k, v});
    REQUIRE_CLOSE(g[0], golden_tensor(c, "gq"), 1e-10, 1e-11);
    REQUIRE_CLOSE(g[1], golden_tensor(c, "gk"), 1e-10, 1e-11);
    REQUIRE_CLOSE(g[2], golden_tensor(c, "gv"), 1e-10, 1e-11);

    // The float32 kernel against the same float64 values.
    Tensor o32 = attention(golden_tensor(c, "q", DType::F32), golden_tensor(c, "k", DType::F32),
                           golden_tensor(c, "v", DType::F32))
                     .out;
    REQUIRE_CLOSE(o32, golden_tensor(c, "out"), 1e-3, 1e-4);
  }
}

TEST_CASE("attention is stable for large unscaled logits", "[attention]") {
  SECTION("float32 scores around +-100 (exp overflows float32 past 88)") {
    const auto& c = attention_case("attention_large_logits");
    Tensor q = golden_tensor(c, "q", DType::F32), k = golden_tensor(c, "k", DType::F32),
           v = golden_tensor(c, "v", DType::F32);
    std::vector<double> s = naive_scores(q.to(DType::F64), k.to(DType::F64)).to_vector();
    double smax = 0;
    for (double x : s) smax = std::max(smax, x);
    REQUIRE(smax > 89.0);  // the case really exceeds float32's exp range
    q.set_requires_grad(), k.set_requires_grad(), v.set_requires_grad();
    AttentionResult r = attention(q, k, v, true);
    sum(mul(r.out, golden_tensor(c, "gy", DType::F32))).backward();
    for (const Tensor& t : {r.out, r.map, q.grad(), k.grad(), v.grad()})
      for (double x : t.to_vector()) REQUIRE(std::isfinite(x));
    REQUIRE_CLOSE(r.map, golden_tensor(c, "map"), 1e-3, 1e-5);
  }
  SECTION("float64 scores of 900: exact answer by hand") {
    // d = 1: q = [30, -30], k = [30, 29, -30] give score rows
    // [900, 870, -900] and [-900, -870, 900].
    Tensor q = Tensor::from_vector(std::vector<double>{30, -30}, {1, 2, 1}, DType::F64).set_requires_grad();
    Tensor k = Tensor::from_vector(std::vector<double>{30, 29, -30}, {1, 3, 1}, DType::F64).set_requires_grad();
    Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3}, {1, 3, 1}, DType::F64).set_requires_grad();
    AttentionResult r = attention(q, k, v, true);
    const double e = std::exp(-30.0), z = 1 + e;
    REQUIRE_CLOSE(r.map, (std::vector<double>{1 / z, e / z, 0, 0, 0, 1}), 1e-12, 1e-300);
    REQUIRE_CLOSE(r.out, (std::vector<double>{(1 + 2 * e) / z, 3}), 1e-14, 0);
    sum(r.out).backward();
    for (const Tensor& t : {q.grad(), k.grad(), v.grad()})
      for (double x : t.to_vector()) REQUIRE(std::isfinite(x));
    // d out_0 / d v = P row 0; out_1 takes v_2 only.
    REQUIRE_CLOSE(v.grad(), (std::vector<double>{1 / z, e / z, 1}), 1e-12, 1e-300);
  }
}

TEST_CASE("attention map rows are softmax rows and carry no gradient", "[attention]") {
  Rng gen(14);
  Tensor q = randn64({3, 9, 4}, gen), k = randn64({3, 11, 4}, gen), v = randn64({3, 11, 2}, gen);
  AttentionResult r = attention(q, k, v, true);
  REQUIRE(r.map.shape() == Shape{3, 9, 11});
  REQUIRE_FALSE(r.map.requires_grad());
  REQUIRE(r.out.requires_grad());
  REQUIRE_CLOSE(sum(r.map, {2}), std::vector<double>(27, 1.0), 1e-14, 1e-14);
  Tensor expect;
  {
    NoGradGuard ng;
    expect = softmax(naive_scores(q, k), 2);
  }
  REQUIRE_CLOSE(r.map, expect, 1e-13, 1e-15);
  // Without return_map no map is made, and out is the same.
  AttentionResult r2 = attention(q, k, v);
  REQUIRE_FALSE(r2.map.defined());
  REQUIRE(r2.out.to_vector() == r.out.to_vector());
}

TEST_CASE("attention takes strided inputs and strided upstream gradients", "[attention]") {
  Rng gen(15);
  // Views laid out (B,d,N) and transposed back: non-contiguous q, k, v.
  Tensor qt = randn64({2, 3, 7}, gen), kt = randn64({2, 3, 5}, gen), vt = randn64({2, 4, 5}, gen);
  Tensor q = qt.transpose(1, 2), k = kt.transpose(1, 2), v = vt.transpose(1, 2);
  REQUIRE_FALSE(q.is_contiguous());
  Tensor out = attention(q, k, v).out;
  Tensor ref = naive_attention(q, k, v);
  REQUIRE_CLOSE(out, ref, 1e-12, 1e-12);
  // A loss through a transpose hands attention a non-contiguous gradient.
  REQUIRE_GRADCHECK(
      [](const auto& in) {
        return attention(in[0].transpose(1, 2), in[1].transpose(1, 2), in[2].transpose(1, 2)).out.transpose(1, 2);
      },
      qt, kt, vt);
}

TEST_CASE("attention errors name the op and shapes", "[attention][errors]") {
  Tensor q = Tensor::zeros({2, 7, 3}), k = Tensor::zeros({2, 5, 3}), v = Tensor::zeros({2, 5, 4});
  REQUIRE_THROWS_WITH(attention(Tensor::zeros({7, 3}), k, v),
                      Catch::Contains("attention") && Catch::Contains("3-d") && Catch::Contains("[7, 3]"));
  REQUIRE_THROWS_WITH(attention(Tensor::zeros({3, 7, 3}), k, v), Catch::Contains("attention: batch") &&
                                                                     Catch::Contains("[3, 7, 3]") &&
                                                                     Catch::Contains("[2, 5, 3]"));
  REQUIRE_THROWS_WITH(attention(Tensor::zeros({2, 7, 2}), k, v),
                      Catch::Contains("attention") && Catch::Contains("feature dim") && Catch::Contains("[2, 7, 2]"));
  REQUIRE_THROWS_WITH(attention(q, k, Tensor::zeros({2, 6, 4})), Catch::Contains("attention") &&
                                                                     Catch::Contains("number of keys") &&
                                                                     Catch::Contains("[2, 6, 4]"));
  REQUIRE_THROWS_WITH(attention(Tensor::zeros({2, 7, 3}), Tensor::zeros({2, 0, 3}), Tensor::zeros({2, 0, 4})),
                      Catch::Contains("attention: no keys") && Catch::Contains("[2, 0, 3]"));
  REQUIRE_THROWS_WITH(attention(q, k.to(DType::F64), v), Catch::Contains("attention") && Catch::Contains("dtype"));
  REQUIRE_THROWS_WITH(attention(Tensor::zeros({2, 7, 3}, DType::I64), k, v),
                      Catch::Contains("attention") && Catch::Contains("int64"));
  REQUIRE_THROWS_WITH(attention(Tensor(), k, v), Catch::Contains("attention") && Catch::Contains("q"));
}
