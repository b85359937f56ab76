// matmul, bmm and linear: PyTorch goldens (forward and gradients), float64
// gradient checks over every shape mix, transposed and strided views, the
// kernel's beta/broadcast contract against a naive loop, float32 vs float64,
// and error messages.
#include <catch2/catch.hpp>

#include "sagan/core/ops.h"
#include "tests/golden/conv_matmul_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

// out[i] = a[i] @ b[i] by the definition, in double, over any strides.
Tensor naive_bmm(const Tensor& a, const Tensor& b) {
  const int64_t B = std::max(a.size(0), b.size(0)), M = a.size(1), K = a.size(2), N = b.size(2);
  std::vector<double> av = a.contiguous().to_vector(), bv = b.contiguous().to_vector(), out(B * M * N, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t ia = a.size(0) == 1 ? 0 : i, ib = b.size(0) == 1 ? 0 : i;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[(ia * M + m) * K + k] * bv[(ib * K + k) * N + n];
        out[(i * M + m) * N + n] = s;
      }
  }
  return Tensor::from_vector(out, {B, M, N}, DType::F64);
}

// Forward and gradients of sum(y * gy) against PyTorch's.
void check_golden(const std::string& name, const std::function<Tensor(const std::vector<Tensor>&)>& f,
                  const std::vector<std::string>& keys) {
  INFO(name);
  const auto& c = conv_matmul_case(name);
  std::vector<Tensor> in;
  for (const auto& k : keys) in.push_back(golden_tensor(c, k).set_requires_grad(true));
  Tensor y = f(in);
  REQUIRE_CLOSE(y, golden_tensor(c, "y"), 1e-12, 1e-12);
  y.backward(golden_tensor(c, "gy"));
  for (size_t i = 0; i < keys.size(); ++i) {
    INFO("gradient of " << keys[i]);
    REQUIRE_CLOSE(in[i].grad(), golden_tensor(c, "g" + keys[i]), 1e-12, 1e-12);
  }
}

}  // namespace

TEST_CASE("matmul, bmm and linear match PyTorch goldens", "[matmul]") {
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  for (const char* name : {"matmul_2d_2d", "matmul_3d_3d", "matmul_2d_3d", "matmul_3d_2d", "matmul_bcast1"})
    check_golden(name, mm, {"a", "b"});
  check_golden("bmm", [](const auto& in) { return bmm(in[0], in[1]); }, {"a", "b"});
  check_golden("linear_bias", [](const auto& in) { return linear(in[0], in[1], in[2]); }, {"x", "w", "b"});
  check_golden("linear_nobias", [](const auto& in) { return linear(in[0], in[1]); }, {"x", "w"});
}

TEST_CASE("matmul gradients over every shape mix", "[matmul][gradcheck]") {
  Rng gen(11);
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  REQUIRE_GRADCHECK(mm, randn64({3, 5}, gen), randn64({5, 7}, gen));
  REQUIRE_GRADCHECK(mm, randn64({2, 3, 5}, gen), randn64({2, 5, 4}, gen));
  REQUIRE_GRADCHECK(mm, randn64({3, 5}, gen), randn64({2, 5, 4}, gen));     // 2-d @ 3-d
  REQUIRE_GRADCHECK(mm, randn64({2, 3, 5}, gen), randn64({5, 4}, gen));     // 3-d @ 2-d
  REQUIRE_GRADCHECK(mm, randn64({1, 3, 5}, gen), randn64({3, 5, 2}, gen));  // batch 1 broadcasts
  REQUIRE_GRADCHECK(mm, randn64({3, 3, 5}, gen), randn64({1, 5, 2}, gen));
  REQUIRE_GRADCHECK(mm, randn64({1, 7}, gen), randn64({7, 1}, gen));  // degenerate rows and columns
}

TEST_CASE("matmul reads transposed and strided views", "[matmul][gradcheck]") {
  Rng gen(12);
  // Column-major operands (transposes) go to the kernel as they are.
  REQUIRE_GRADCHECK([](const auto& in) { return matmul(in[0].t(), in[1]); }, randn64({5, 3}, gen),
                    randn64({5, 4}, gen));
  REQUIRE_GRADCHECK([](const auto& in) { return matmul(in[0], in[1].t()); }, randn64({3, 5}, gen),
                    randn64({4, 5}, gen));
  REQUIRE_GRADCHECK([](const auto& in) { return matmul(in[0].transpose(1, 2), in[1].transpose(1, 2)); },
                    randn64({2, 5, 3}, gen), randn64({2, 4, 5}, gen));
  // 3-d @ 2-d with a transposed (unmergeable) left operand: the batched path.
  REQUIRE_GRADCHECK([](const auto& in) { return matmul(in[0].transpose(1, 2), in[1]); }, randn64({2, 5, 3}, gen),
                    randn64({5, 4}, gen));
  // A permuted batch and a step-2 slice (no unit stride: copied once).
  REQUIRE_GRADCHECK(
      [](const auto& in) {
        return matmul(in[0].permute({1, 0, 2}), in[1].slice(2, 0, 9, 2));
      },
      randn64({3, 2, 5}, gen), randn64({2, 5, 9}, gen));

  Tensor a = randn64({6, 5}, gen, false), b = randn64({4, 6}, gen, false);
  REQUIRE_CLOSE(matmul(a.t(), b.t()),
                naive_bmm(a.t().contiguous().unsqueeze(0), b.t().contiguous().unsqueeze(0)).squeeze(0), 1e-12, 1e-12);
}

TEST_CASE("bmm and linear gradients", "[matmul][gradcheck]") {
  Rng gen(13);
  REQUIRE_GRADCHECK([](const auto& in) { return bmm(in[0], in[1]); }, randn64({3, 2, 5}, gen), randn64({3, 5, 7}, gen));
  REQUIRE_GRADCHECK([](const auto& in) { return bmm(in[0], in[1].transpose(1, 2)); }, randn64({3, 2, 5}, gen),
                    randn64({3, 7, 5}, gen));
  auto lin_b = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  auto lin = [](const std::vector<Tensor>& in) { return linear(in[0], in[1]); };
  REQUIRE_GRADCHECK(lin_b, randn64({2, 3, 5}, gen), randn64({7, 5}, gen), randn64({7}, gen));
  REQUIRE_GRADCHECK(lin, randn64({3, 5}, gen), randn64({7, 5}, gen));
  REQUIRE_GRADCHECK(lin_b, randn64({5}, gen), randn64({3, 5}, gen), randn64({3}, gen));  // a single vector
  REQUIRE_GRADCHECK([](const auto& in) { return linear(in[0].transpose(0, 1), in[1], in[2]); }, randn64({5, 3}, gen),
                    randn64({7, 5}, gen), randn64({7}, gen));
  Tensor y = linear(randn64({4, 2, 5}, gen), randn64({3, 5}, gen));
  CHECK(y.shape() == Shape{4, 2, 3});
}

TEST_CASE("bmm kernel: layouts, broadcast batch and beta", "[matmul]") {
  Rng gen(14);
  Backend& be = backend_for(Device::cpu());
  for (double beta : {0.0, 1.0, 0.5}) {
    INFO("beta " << beta);
    // a column-major with a broadcast batch, b row-major padded (ld > N).
    Tensor a = randn64({1, 6, 5}, gen, false).transpose(1, 2);  // (1,5,6), col-major
    Tensor b = randn64({3, 6, 11}, gen, false).slice(2, 1, 8);  // (3,6,7), ld 11
    Tensor out0 = randn64({3, 5, 7}, gen, false);
    Tensor out = out0.clone();
    be.bmm(a, b, out, beta);
    Tensor expect = add(naive_bmm(a, b), mul(out0, beta));
    REQUIRE_CLOSE(out, expect, 1e-12, 1e-12);
  }
  // beta = 0 overwrites: NaN in out must not leak.
  Tensor a = randn64({2, 3, 4}, gen, false), b = randn64({2, 4, 2}, gen, false);
  Tensor out = Tensor::full({2, 3, 2}, NAN, DType::F64);
  be.bmm(a, b, out, 0.0);
  REQUIRE_CLOSE(out, naive_bmm(a, b), 1e-12, 1e-12);
}

TEST_CASE("matmul float32 agrees with float64 on the threaded paths", "[matmul]") {
  Rng gen(15);
  // Batched (threads over the batch), one big GEMM (Eigen's threads), and a
  // broadcast 3-d @ 2-d (one tall GEMM).
  for (auto [sa, sb] :
       {std::pair<Shape, Shape>{{8, 33, 70}, {8, 70, 17}}, {{1, 150, 301}, {1, 301, 97}}, {{6, 19, 64}, {64, 45}}}) {
    Tensor a = Tensor::randn(sa, gen, DType::F64), b = Tensor::randn(sb, gen, DType::F64);
    Tensor y64 = matmul(a, b);
    Tensor y32 = matmul(a.to(DType::F32), b.to(DType::F32));
    REQUIRE(y32.dtype() == DType::F32);
    REQUIRE_CLOSE(y32.to(DType::F64), y64, 1e-4, 1e-4);
    Tensor b3 = b.dim() == 2 ? b.unsqueeze(0) : b;
    REQUIRE_CLOSE(y64, naive_bmm(a, b3).reshape(y64.shape()), 1e-12, 1e-12);
  }
}

TEST_CASE("matmul errors name the op and both shapes", "[matmul][errors]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  REQUIRE_THROWS_WITH(matmul(a, b),
                      Catch::Contains("matmul") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 5]"));
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({3}), b),
                      Catch::Contains("matmul") && Catch::Contains("2-d or 3-d") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})),
                      Catch::Contains("matmul") && Catch::Contains("batch") && Catch::Contains("[2, 2, 3]"));
  REQUIRE_THROWS_WITH(bmm(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})),
                      Catch::Contains("bmm") && Catch::Contains("[2, 2, 3]") && Catch::Contains("[3, 3, 4]"));
  REQUIRE_THROWS_WITH(bmm(a, b), Catch::Contains("bmm") && Catch::Contains("3-d"));
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                      Catch::Contains("linear") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 5]"));
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({2, 5}), Tensor::zeros({4, 5}), Tensor::zeros({3})),
                      Catch::Contains("linear") && Catch::Contains("bias") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(matmul(a, Tensor::zeros({3, 2}, DType::F64)),
                      Catch::Contains("matmul") && Catch::Contains("dtype"));
}
