// The evaluation ops (core/ops_vision.h): float64 values against PyTorch
// goldens (tests/golden/make_eval_goldens.py), float32 and parallel paths
// against float64 and against the engine's own conv2d, NaN handling, and
// error messages. Gradient checks and CUDA parity: tests/ops/op_cases.cpp.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "sagan/core/ops.h"
#include "sagan/core/ops_vision.h"
#include "tests/golden/eval_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;
using golden::eval_goldens;
using golden::eval_tensor;

namespace {
const nlohmann::json& ops() { return eval_goldens().at("ops"); }
Tensor golden_x() { return eval_tensor(ops().at("x")); }
}  // namespace

TEST_CASE("conv2d_rect matches PyTorch for rectangular kernels, strides and pads", "[eval_ops]") {
  Tensor x = golden_x();  // (2, 3, 5, 7)
  for (const auto& c : ops().at("conv2d_rect")) {
    auto st = c.at("stride").get<std::vector<int64_t>>();
    auto pd = c.at("pad").get<std::vector<int64_t>>();
    Tensor w = eval_tensor(c.at("w")), b = eval_tensor(c.at("b"));
    INFO("kernel " << shape_str(w.shape()) << " stride " << st[0] << "," << st[1] << " pad " << pd[0] << "," << pd[1]);
    Tensor y = conv2d_rect(x, w, b, {st[0], st[1], pd[0], pd[1]});
    REQUIRE_CLOSE(y, eval_tensor(c.at("y")), 1e-12, 1e-12);
    // float32 agrees with float64 to float precision.
    Tensor y32 = conv2d_rect(x.to(DType::F32), w.to(DType::F32), b.to(DType::F32), {st[0], st[1], pd[0], pd[1]});
    REQUIRE(y32.dtype() == DType::F32);
    REQUIRE_CLOSE(y32.to(DType::F64), y, 1e-4, 1e-5);
  }
}

TEST_CASE("conv2d_rect with a square kernel equals conv2d, in the batched parallel path", "[eval_ops]") {
  Rng gen(3);
  // 9 images of 7x5: several images per GEMM chunk and more images than threads.
  Tensor x = randn64({9, 4, 7, 5}, gen, false), w = randn64({6, 4, 3, 3}, gen, false), b = randn64({6}, gen, false);
  for (int64_t s : {1, 2})
    for (int64_t p : {0, 1}) {
      INFO("stride " << s << " pad " << p);
      REQUIRE_CLOSE(conv2d_rect(x, w, b, {s, s, p, p}), conv2d(x, w, b, s, p), 1e-12, 1e-12);
    }
  // A strided input view is accepted (copied once).
  Tensor xt = x.transpose(2, 3);
  REQUIRE_CLOSE(conv2d_rect(xt, w, std::nullopt, {1, 1, 1, 1}), conv2d(xt.contiguous(), w, std::nullopt, 1, 1), 1e-12,
                1e-12);
}

TEST_CASE("conv2d_rect errors name the op and shapes", "[eval_ops]") {
  Tensor x = Tensor::zeros({1, 3, 5, 5}, DType::F64), w = Tensor::zeros({2, 3, 1, 7}, DType::F64);
  REQUIRE_THROWS_WITH(conv2d_rect(x, w, std::nullopt, {}), Catch::Contains("conv2d_rect: kernel 1x7 does not fit"));
  REQUIRE_THROWS_WITH(conv2d_rect(x, Tensor::zeros({2, 4, 1, 3}, DType::F64)),
                      Catch::Contains("conv2d_rect: input has 3 channels but weight [2, 4, 1, 3] expects 4"));
  REQUIRE_THROWS_WITH(conv2d_rect(x, Tensor::zeros({2, 3, 1, 3}, DType::F64), Tensor::zeros({3}, DType::F64)),
                      Catch::Contains("conv2d_rect: bias of shape [3] does not match weight [2, 3, 1, 3]"));
  REQUIRE_THROWS_WITH(conv2d_rect(x, Tensor::zeros({2, 3, 1, 3}, DType::F64), std::nullopt, {0, 1, 0, 0}),
                      Catch::Contains("conv2d_rect: need strides >= 1"));
  REQUIRE_THROWS_WITH(conv2d_rect(x.reshape({3, 5, 5}), w), Catch::Contains("conv2d_rect: input must be 4-d"));
}

TEST_CASE("max_pool2d and avg_pool2d match PyTorch", "[eval_ops]") {
  Tensor x = golden_x();
  for (const auto& c : ops().at("pool2d")) {
    const auto k = c.at("kernel").get<int64_t>(), s = c.at("stride").get<int64_t>(), p = c.at("pad").get<int64_t>();
    const bool max = c.at("kind") == "max", cip = c.at("count_include_pad").get<bool>();
    INFO((max ? "max" : "avg") << " k " << k << " s " << s << " p " << p << " count_include_pad " << cip);
    Tensor y = max ? max_pool2d(x, k, s, p) : avg_pool2d(x, k, s, p, cip);
    REQUIRE_CLOSE(y, eval_tensor(c.at("y")), 1e-12, 1e-12);
    Tensor y32 = max ? max_pool2d(x.to(DType::F32), k, s, p) : avg_pool2d(x.to(DType::F32), k, s, p, cip);
    REQUIRE_CLOSE(y32.to(DType::F64), y, 1e-6, 1e-6);
  }
}

TEST_CASE("pooling: parallel planes, NaN propagation, errors", "[eval_ops]") {
  Rng gen(5);
  // Big enough for the parallel path: compare against the 2x2 pools of the engine.
  Tensor x = randn64({4, 8, 33, 35}, gen, false);
  REQUIRE_CLOSE(max_pool2d(x, 2, 2), max_pool2x2(x), 0, 0);
  REQUIRE_CLOSE(avg_pool2d(x, 2, 2), avg_pool2x2(x), 1e-15, 1e-15);
  Tensor n = Tensor::from_vector(std::vector<double>{1, 2, std::nan(""), 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, DType::F64);
  auto v = max_pool2d(n, 2, 1).to_vector();  // windows: {1,2,4,5} {2,nan,5,6} {4,5,7,8} {5,6,8,9}
  CHECK(v[0] == 5);
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == 8);
  CHECK(v[3] == 9);
  Tensor small = Tensor::zeros({1, 1, 2, 2}, DType::F64);
  REQUIRE_THROWS_WITH(max_pool2d(small, 3, 1),
                      Catch::Contains("max_pool2d: input [1, 1, 2, 2] is smaller than the 3x3"));
  REQUIRE_THROWS_WITH(avg_pool2d(small, 3, 1, 2), Catch::Contains("avg_pool2d: pad must be in [0, kernel/2]"));
  REQUIRE_THROWS_WITH(avg_pool2d(small, 1, 0), Catch::Contains("avg_pool2d: need kernel >= 1 and stride >= 1"));
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({2, 2}), 1, 1), Catch::Contains("max_pool2d: expected an NCHW tensor"));
}

TEST_CASE("adaptive_avg_pool2d matches PyTorch", "[eval_ops]") {
  Tensor x = golden_x();
  for (const auto& c : ops().at("adaptive")) {
    auto sz = c.at("size").get<std::vector<int64_t>>();
    INFO("size " << sz[0] << "x" << sz[1]);
    REQUIRE_CLOSE(adaptive_avg_pool2d(x, sz[0], sz[1]), eval_tensor(c.at("y")), 1e-12, 1e-12);
  }
  // (1, 1) is the spatial mean.
  REQUIRE_CLOSE(adaptive_avg_pool2d(x, 1, 1), mean(x, {2, 3}, true), 1e-14, 1e-14);
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(x, 0, 2),
                      Catch::Contains("adaptive_avg_pool2d: output size must be positive"));
}

TEST_CASE("resize_bilinear matches PyTorch (align_corners=False), up and down", "[eval_ops]") {
  Tensor x = golden_x();
  for (const auto& c : ops().at("resize")) {
    auto sz = c.at("size").get<std::vector<int64_t>>();
    INFO("size " << sz[0] << "x" << sz[1]);
    REQUIRE_CLOSE(resize_bilinear(x, sz[0], sz[1]), eval_tensor(c.at("y")), 1e-12, 1e-12);
    REQUIRE_CLOSE(resize_bilinear(x.to(DType::F32), sz[0], sz[1]).to(DType::F64), eval_tensor(c.at("y")), 1e-5, 1e-5);
  }
  // Same size is the identity; a constant image stays constant at any size.
  REQUIRE_CLOSE(resize_bilinear(x, 5, 7), x, 0, 1e-15);
  Tensor k = Tensor::full({2, 3, 4, 5}, 0.25, DType::F64);
  REQUIRE_CLOSE(resize_bilinear(k, 299, 37), Tensor::full({2, 3, 299, 37}, 0.25, DType::F64), 0, 1e-15);
  REQUIRE_THROWS_WITH(resize_bilinear(x, 0, 3),
                      Catch::Contains("resize_bilinear: output size must be positive, got 0x3"));
}

TEST_CASE("max_pool2d routes the gradient to the cell the forward picked (the first NaN)", "[eval_ops]") {
  // Windows of a 3x3 stride-1 pool over {1, 2, nan, 4, 5, 6, 7, 8, 9}: the
  // ones holding the NaN send their gradient there, the others to their max.
  Tensor n = Tensor::from_vector(std::vector<double>{1, 2, std::nan(""), 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, DType::F64);
  n.set_requires_grad(true);
  Tensor y = max_pool2d(n, 2, 1);  // windows {1,2,4,5} {2,nan,5,6} {4,5,7,8} {5,6,8,9}
  y.backward(Tensor::from_vector(std::vector<double>{1, 10, 100, 1000}, {1, 1, 2, 2}, DType::F64));
  CHECK(n.grad().to_vector() == std::vector<double>{0, 0, 10, 0, 1, 0, 0, 100, 1000});
}
