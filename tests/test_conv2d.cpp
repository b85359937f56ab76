// conv2d: PyTorch goldens (forward and all three gradients), the chunked
// (several images per GEMM) and threaded paths against a naive loop,
// float32 vs float64, and error messages. Gradient checks (k=1/3, stride
// 1/2, pad 0/1, odd sizes) and CUDA parity: tests/ops/op_cases.cpp.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "tests/golden/conv_matmul_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

// conv2d by its definition, in double.
Tensor naive_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, int64_t s, int64_t p) {
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = w.size(0), k = w.size(2);
  const int64_t Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), out(B * Co * Ho * Wo);
  std::vector<double> bv = b ? b->to_vector() : std::vector<double>(Co, 0.0);
  for (int64_t n = 0; n < B; ++n)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = bv[o];
          for (int64_t c = 0; c < Ci; ++c)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const int64_t ih = oh * s - p + kh, iw = ow * s - p + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += xv[((n * Ci + c) * H + ih) * W + iw] * wv[((o * Ci + c) * k + kh) * k + kw];
              }
          out[((n * Co + o) * Ho + oh) * Wo + ow] = acc;
        }
  return Tensor::from_vector(out, {B, Co, Ho, Wo}, DType::F64);
}

}  // namespace

TEST_CASE("conv2d matches PyTorch goldens, forward and backward", "[conv2d]") {
  for (const char* name : {"conv2d_k3_s1_p1_bias", "conv2d_k3_s2_p1_bias", "conv2d_k3_s1_p0", "conv2d_k3_s2_p0",
                           "conv2d_k1_s1_p0_bias", "conv2d_k1_s2_p0", "conv2d_k1_s1_p1_bias", "conv2d_k5_s1_p2"}) {
    INFO(name);
    const auto& c = conv_matmul_case(name);
    const bool has_bias = c.contains("b");
    Tensor x = golden_tensor(c, "x").set_requires_grad(true);
    Tensor w = golden_tensor(c, "w").set_requires_grad(true);
    std::optional<Tensor> b;
    if (has_bias) b = golden_tensor(c, "b").set_requires_grad(true);
    Tensor y = conv2d(x, w, b, c.at("stride").get<int64_t>(), c.at("padding").get<int64_t>());
    REQUIRE_CLOSE(y, golden_tensor(c, "y"), 1e-12, 1e-12);
    y.backward(golden_tensor(c, "gy"));
    REQUIRE_CLOSE(x.grad(), golden_tensor(c, "gx"), 1e-12, 1e-12);
    REQUIRE_CLOSE(w.grad(), golden_tensor(c, "gw"), 1e-12, 1e-12);
    if (has_bias) REQUIRE_CLOSE(b->grad(), golden_tensor(c, "gb"), 1e-12, 1e-12);
  }
}

TEST_CASE("conv2d forward and backward against a naive loop on the threaded paths", "[conv2d]") {
  Rng gen(23);
  struct Case {
    int64_t B, Ci, Co, H, k, s, p;
  };
  // Chunks of many small images, one image per chunk, a single image (Eigen's
  // threads), and odd strided geometry.
  for (Case c : {Case{9, 6, 7, 4, 3, 1, 1}, Case{4, 5, 6, 23, 3, 1, 1}, Case{1, 8, 5, 25, 3, 2, 1},
                 Case{7, 6, 9, 5, 1, 1, 0}, Case{3, 4, 5, 11, 1, 2, 0}, Case{6, 3, 4, 9, 3, 2, 0}}) {
    INFO("B " << c.B << " Ci " << c.Ci << " Co " << c.Co << " H " << c.H << " k " << c.k << " s " << c.s << " p "
              << c.p);
    Tensor x = randn64({c.B, c.Ci, c.H, c.H + 1}, gen), w = randn64({c.Co, c.Ci, c.k, c.k}, gen);
    Tensor b = randn64({c.Co}, gen);
    Tensor y = conv2d(x, w, b, c.s, c.p);
    REQUIRE_CLOSE(y, naive_conv2d(x, w, b, c.s, c.p), 1e-12, 1e-12);
    // Backward through the same definition: d sum(y*gy)/dx and /dw match
    // the adjoint computed by the naive loop's linearity.
    Tensor gy = Tensor::randn(y.shape(), gen, DType::F64);
    y.backward(gy);
    // <gy, conv(dx, w)> = <gx, dx> and <gy, conv(x, dw)> = <gw, dw> for any dx, dw.
    Tensor dx = Tensor::randn(x.shape(), gen, DType::F64), dw = Tensor::randn(w.shape(), gen, DType::F64);
    const double lhs_x = sum(mul(gy, naive_conv2d(dx, w, std::nullopt, c.s, c.p))).item();
    const double lhs_w = sum(mul(gy, naive_conv2d(x.detach(), dw, std::nullopt, c.s, c.p))).item();
    CHECK(sum(mul(x.grad(), dx)).item() == Approx(lhs_x).epsilon(1e-10));
    CHECK(sum(mul(w.grad(), dw)).item() == Approx(lhs_w).epsilon(1e-10));
    REQUIRE_CLOSE(b.grad(), sum(gy, {0, 2, 3}), 1e-12, 1e-12);
  }
}

TEST_CASE("conv2d float32 agrees with float64", "[conv2d]") {
  Rng gen(24);
  for (auto [k, s, p] : {std::tuple<int64_t, int64_t, int64_t>{3, 1, 1}, {1, 1, 0}, {3, 2, 1}}) {
    INFO("k " << k << " stride " << s);
    Tensor x = randn64({6, 16, 10, 9}, gen), w = randn64({24, 16, k, k}, gen), b = randn64({24}, gen);
    Tensor y64 = conv2d(x, w, b, s, p);
    Tensor x32 = x.detach().to(DType::F32).set_requires_grad(true);
    Tensor w32 = w.detach().to(DType::F32).set_requires_grad(true);
    Tensor b32 = b.detach().to(DType::F32).set_requires_grad(true);
    Tensor y32 = conv2d(x32, w32, b32, s, p);
    REQUIRE(y32.dtype() == DType::F32);
    // 3x3 stride 1 takes Winograd F(4x4, 3x3), whose float32 error follows
    // the largest output rather than each element (tests/test_conv2d_3x3.cpp
    // bounds it): the absolute tolerance is 1e-5 of the largest magnitude.
    auto atol = [](const Tensor& t) {
      double m = 0;
      for (double v : t.to_vector()) m = std::max(m, std::abs(v));
      return std::max(1e-4, 1e-5 * m);
    };
    REQUIRE_CLOSE(y32.to(DType::F64), y64, 1e-4, atol(y64));
    Tensor gy = Tensor::randn(y64.shape(), gen, DType::F64);
    y64.backward(gy);
    y32.backward(gy.to(DType::F32));
    REQUIRE_CLOSE(x32.grad().to(DType::F64), x.grad(), 1e-4, atol(x.grad()));
    REQUIRE_CLOSE(w32.grad().to(DType::F64), w.grad(), 1e-4, std::max(1e-3, atol(w.grad())));
    REQUIRE_CLOSE(b32.grad().to(DType::F64), b.grad(), 1e-4, 1e-3);
  }
}

TEST_CASE("conv2d errors name the op and shapes", "[conv2d][errors]") {
  Tensor x = Tensor::zeros({2, 3, 7, 6}), w = Tensor::zeros({5, 4, 3, 3});
  REQUIRE_THROWS_WITH(conv2d(x, w), Catch::Contains("conv2d") && Catch::Contains("3 channels") &&
                                        Catch::Contains("[5, 4, 3, 3]") && Catch::Contains("[2, 3, 7, 6]"));
  REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({3, 7, 6}), Tensor::zeros({5, 3, 3, 3})),
                      Catch::Contains("conv2d") && Catch::Contains("4-d") && Catch::Contains("[3, 7, 6]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({5, 3, 3})),
                      Catch::Contains("conv2d") && Catch::Contains("weight") && Catch::Contains("[5, 3, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({5, 3, 3, 2})),
                      Catch::Contains("conv2d") && Catch::Contains("square") && Catch::Contains("[5, 3, 3, 2]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({5, 3, 3, 3}), Tensor::zeros({4})),
                      Catch::Contains("conv2d") && Catch::Contains("bias") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({2, 3, 2, 2}), Tensor::zeros({5, 3, 3, 3})),
                      Catch::Contains("conv2d") && Catch::Contains("does not fit") && Catch::Contains("[2, 3, 2, 2]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({5, 3, 3, 3}), std::nullopt, 0, 1),
                      Catch::Contains("conv2d") && Catch::Contains("stride"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({5, 3, 1, 1}, DType::F64)),
                      Catch::Contains("conv2d") && Catch::Contains("dtype"));
}
