// The CPU's special paths for 3x3/stride-1/pad-1 convs, Winograd F(2x2, 3x3)
// and F(4x4, 3x3) (kernels/cpu/conv2d_winograd.cpp) and the direct loops for
// few outputs (kernels/cpu/conv2d_direct.cpp), each forced on for any shape: the
// PyTorch golden, float64 gradient checks on odd sizes (tiles and row
// segments sticking out of the image), forward and both gradients against
// a naive loop on the chunked and threaded paths, float32 against float64
// and im2col, which convs the automatic choice sends where, and errors.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/kernels/cpu/conv2d_direct.h"
#include "sagan/kernels/cpu/conv2d_winograd.h"
#include "sagan/kernels/cpu/conv3x3_algo.h"
#include "tests/golden/conv_matmul_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

// Sets the 3x3 algorithm for one scope.
struct AlgoScope {
  cpu::Conv3x3Algo saved = cpu::conv3x3_algo();
  explicit AlgoScope(cpu::Conv3x3Algo a) { cpu::set_conv3x3_algo(a); }
  ~AlgoScope() { cpu::set_conv3x3_algo(saved); }
};

// The 3x3 / stride 1 / pad 1 conv and its two gradients by definition, in double.
struct Naive {
  std::vector<double> y, gx, gw;
};
Naive naive(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy) {
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = w.size(0);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector(), g = gy.to_vector();
  Naive r{std::vector<double>(static_cast<size_t>(B * Co * H * W)), std::vector<double>(xv.size()),
          std::vector<double>(wv.size())};
  for (int64_t n = 0; n < B; ++n)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t oh = 0; oh < H; ++oh)
        for (int64_t ow = 0; ow < W; ++ow) {
          const size_t yi = static_cast<size_t>(((n * Co + o) * H + oh) * W + ow);
          double acc = bv[static_cast<size_t>(o)];
          for (int64_t c = 0; c < Ci; ++c)
            for (int64_t kh = 0; kh < 3; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                const int64_t ih = oh - 1 + kh, iw = ow - 1 + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const size_t xi = static_cast<size_t>(((n * Ci + c) * H + ih) * W + iw);
                const size_t wi = static_cast<size_t>(((o * Ci + c) * 3 + kh) * 3 + kw);
                acc += xv[xi] * wv[wi];
                r.gx[xi] += g[yi] * wv[wi];
                r.gw[wi] += g[yi] * xv[xi];
              }
          r.y[yi] = acc;
        }
  return r;
}

// max |a - b|, or max |a| when b is undefined.
double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> u = a.to_vector(), v = b.defined() ? b.to_vector() : std::vector<double>();
  double m = 0;
  for (size_t i = 0; i < u.size(); ++i) m = max_keep_nan(m, std::abs(u[i] - (b.defined() ? v[i] : 0.0)));
  return m;
}

// The paths that replace im2col, one per GENERATE.
cpu::Conv3x3Algo fast_path() {
  return GENERATE(cpu::Conv3x3Algo::kWinograd, cpu::Conv3x3Algo::kWinograd4, cpu::Conv3x3Algo::kDirect);
}
const char* name_of(cpu::Conv3x3Algo a) { return cpu::conv3x3_algo_name(a); }

}  // namespace

TEST_CASE("3x3 conv2d paths match the PyTorch golden, forward and backward", "[conv2d_3x3]") {
  const cpu::Conv3x3Algo algo = fast_path();
  INFO(name_of(algo));
  AlgoScope force(algo);
  const auto& c = conv_matmul_case("conv2d_k3_s1_p1_bias");
  Tensor x = golden_tensor(c, "x").set_requires_grad(true);
  Tensor w = golden_tensor(c, "w").set_requires_grad(true);
  Tensor b = golden_tensor(c, "b").set_requires_grad(true);
  Tensor y = conv2d(x, w, b, 1, 1);
  REQUIRE_CLOSE(y, golden_tensor(c, "y"), 1e-12, 1e-12);
  y.backward(golden_tensor(c, "gy"));
  REQUIRE_CLOSE(x.grad(), golden_tensor(c, "gx"), 1e-12, 1e-12);
  REQUIRE_CLOSE(w.grad(), golden_tensor(c, "gw"), 1e-12, 1e-12);
  REQUIRE_CLOSE(b.grad(), golden_tensor(c, "gb"), 1e-12, 1e-12);
}

TEST_CASE("3x3 conv2d paths' gradients on odd sizes", "[conv2d_3x3][gradcheck]") {
  const cpu::Conv3x3Algo algo = fast_path();
  INFO(name_of(algo));
  AlgoScope force(algo);
  Rng gen(31);
  // Odd H and W leave half tiles at the bottom and right; 1x1 and 1x2
  // images are a single tile that is mostly padding.
  for (auto [B, H, W] : {std::tuple<int64_t, int64_t, int64_t>{2, 5, 7}, {3, 1, 1}, {2, 1, 2}, {1, 4, 3}}) {
    INFO("B " << B << " H " << H << " W " << W);
    Tensor x = randn64({B, 3, H, W}, gen), w = randn64({5, 3, 3, 3}, gen), b = randn64({5}, gen);
    REQUIRE_GRADCHECK([](const auto& in) { return conv2d(in[0], in[1], in[2], 1, 1); }, x, w, b);
  }
}

TEST_CASE("3x3 conv2d paths against a naive loop on the chunked and threaded paths", "[conv2d_3x3]") {
  const cpu::Conv3x3Algo algo = fast_path();
  INFO(name_of(algo));
  AlgoScope force(algo);
  Rng gen(32);
  struct Case {
    int64_t B, Ci, Co, H, W;
  };
  // Many tiny images per chunk (and per thread), one image per chunk with
  // more tiles than a chunk, a single image (one thread), odd sizes.
  for (Case c :
       {Case{37, 4, 5, 4, 4}, Case{5, 6, 7, 33, 34}, Case{1, 5, 3, 9, 11}, Case{6, 7, 5, 5, 3}, Case{2, 3, 2, 2, 2}}) {
    INFO("B " << c.B << " Ci " << c.Ci << " Co " << c.Co << " H " << c.H << " W " << c.W);
    Tensor x = randn64({c.B, c.Ci, c.H, c.W}, gen), w = randn64({c.Co, c.Ci, 3, 3}, gen);
    Tensor b = randn64({c.Co}, gen);
    Tensor y = conv2d(x, w, b, 1, 1);
    Tensor gy = Tensor::randn(y.shape(), gen, DType::F64);
    Naive ref = naive(x, w, b, gy);
    REQUIRE_CLOSE(y, ref.y, 1e-12, 1e-12);
    y.backward(gy);
    REQUIRE_CLOSE(x.grad(), ref.gx, 1e-12, 1e-12);
    REQUIRE_CLOSE(w.grad(), ref.gw, 1e-11, 1e-11);
    REQUIRE_CLOSE(b.grad(), sum(gy, {0, 2, 3}), 1e-12, 1e-12);
  }
}

TEST_CASE("3x3 conv2d paths in float32 agree with float64 and with im2col at SAGAN widths", "[conv2d_3x3]") {
  const cpu::Conv3x3Algo algo = fast_path();
  INFO(name_of(algo));
  Rng gen(33);
  // 128 channels at 8x8 (D), 64 channels at an odd 9x7 map, the generator's
  // 256 -> 3 head at an odd 17x19 (two row segments, the second partial).
  for (auto [Ci, Co, H, W] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{128, 128, 8, 8}, {64, 64, 9, 7}, {256, 3, 17, 19}}) {
    INFO("Ci " << Ci << " Co " << Co << " H " << H << " W " << W);
    Tensor x = randn64({4, Ci, H, W}, gen, false), w = randn64({Co, Ci, 3, 3}, gen, false);
    Tensor b = randn64({Co}, gen, false), gy = randn64({4, Co, H, W}, gen, false);
    w = mul(w, 1.0 / std::sqrt(9.0 * static_cast<double>(Ci)));  // unit-scale outputs, as with xavier init
    auto run = [&](cpu::Conv3x3Algo algo, DType dt) {
      AlgoScope scope(algo);
      Tensor xi = x.detach().to(dt).set_requires_grad(true), wi = w.detach().to(dt).set_requires_grad(true);
      Tensor y = conv2d(xi, wi, b.to(dt), 1, 1);
      y.backward(gy.to(dt));
      return std::array<Tensor, 3>{y.detach().to(DType::F64), xi.grad().to(DType::F64), wi.grad().to(DType::F64)};
    };
    auto ref = run(cpu::Conv3x3Algo::kIm2col, DType::F64);
    auto w64 = run(algo, DType::F64);
    auto w32 = run(algo, DType::F32);
    auto i32 = run(cpu::Conv3x3Algo::kIm2col, DType::F32);
    for (int k = 0; k < 3; ++k) {
      INFO("output " << k << " (y, gx, gw)");
      REQUIRE_CLOSE(w64[k], ref[k], 1e-12, 1e-11);
      // float32 on this path within a factor of float32 im2col's own error:
      // 4 for F(2x2) and the direct loops; F(4x4)'s transforms (constants up
      // to 8 and 1/24) measured 10-27x here, so 32 (its error is still
      // below 1e-5 of the outputs' largest magnitude, checked next).
      const double err_w = max_abs_diff(w32[k], ref[k]), err_i = max_abs_diff(i32[k], ref[k]);
      const double scale = max_abs_diff(ref[k], Tensor());
      const double factor = algo == cpu::Conv3x3Algo::kWinograd4 ? 32 : 4;
      INFO(name_of(algo) << " f32 error " << err_w << ", im2col f32 error " << err_i << ", scale " << scale);
      CHECK(err_w <= factor * err_i + 1e-6 * scale);
      CHECK(err_w <= 1e-5 * scale);
    }
  }
}

TEST_CASE("the direct path's weight gradient is finite where im2col's is, with an infinite input", "[conv2d_3x3]") {
  // An inf in the last column: the direct loops' row segment is wider than
  // the 7 columns, and a lane past the image must not multiply a zero
  // gradient by it (0 * inf = NaN).
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, INFINITY}, {1, 1, 1, 7}, DType::F64);
  Tensor w = Tensor::ones({3, 1, 3, 3}, DType::F64), gy = Tensor::ones({1, 3, 1, 7}, DType::F64);
  auto grad_w = [&](cpu::Conv3x3Algo algo) {
    AlgoScope scope(algo);
    Tensor gw = Tensor::zeros(w.shape(), DType::F64);
    backend_for(Device::cpu()).conv2d_backward_weight(gy, x, gw, {1, 1});
    return gw.to_vector();
  };
  const std::vector<double> direct = grad_w(cpu::Conv3x3Algo::kDirect), im2col = grad_w(cpu::Conv3x3Algo::kIm2col);
  for (size_t k = 0; k < direct.size(); ++k) {
    INFO("element " << k << ": direct " << direct[k] << ", im2col " << im2col[k]);
    CHECK(std::isnan(direct[k]) == std::isnan(im2col[k]));
    CHECK((std::isfinite(direct[k]) ? direct[k] : 0.0) == (std::isfinite(im2col[k]) ? im2col[k] : 0.0));
  }
}

TEST_CASE("3x3 stride-1 pad-1 convs go to Winograd when wide, to the direct loops when few outputs, else im2col",
          "[conv2d_3x3]") {
  using cpu::ConvPath;
  AlgoScope automatic(cpu::Conv3x3Algo::kAuto);
  CHECK(cpu::conv3x3_path(256, 256, 3, 1, 1, 8, 8) == ConvPath::kWinograd4);
  CHECK(cpu::conv3x3_path(128, 128, 3, 1, 1, 8, 8) == ConvPath::kWinograd4);
  CHECK(cpu::conv3x3_path(16, 16, 3, 1, 1, 8, 8) == ConvPath::kWinograd4);
  // The tile size with fewer multiplies: F(2x2) for images at most 2 wide or tall.
  CHECK(cpu::conv3x3_path(64, 64, 3, 1, 1, 4, 4) == ConvPath::kWinograd4);   // 36 against 64
  CHECK(cpu::conv3x3_path(64, 64, 3, 1, 1, 6, 6) == ConvPath::kWinograd4);   // 144 against 144
  CHECK(cpu::conv3x3_path(64, 64, 3, 1, 1, 2, 2) == ConvPath::kWinograd);    // 36 against 16
  CHECK(cpu::conv3x3_path(64, 64, 3, 1, 1, 1, 32) == ConvPath::kWinograd);   // 288 against 256
  CHECK(cpu::conv3x3_path(64, 64, 3, 1, 1, 3, 32) == ConvPath::kWinograd4);  // 288 against 512
  CHECK(cpu::conv3x3_path(3, 128, 3, 1, 1, 8, 8) == ConvPath::kIm2col);   // D's first conv: im2col's K = 27 is better
  CHECK(cpu::conv3x3_path(256, 3, 3, 1, 1, 8, 8) == ConvPath::kDirect);   // G's output conv
  CHECK(cpu::conv3x3_path(64, 1, 3, 1, 1, 8, 8) == ConvPath::kDirect);    // a gray image's
  CHECK(cpu::conv3x3_path(256, 15, 3, 1, 1, 8, 8) == ConvPath::kDirect);  // just too few for Winograd
  CHECK(cpu::conv3x3_path(3, 8, 3, 1, 1, 8, 8) == ConvPath::kDirect);
  CHECK(cpu::conv3x3_path(128, 128, 3, 2, 1, 8, 8) == ConvPath::kIm2col);  // strided
  CHECK(cpu::conv3x3_path(128, 128, 3, 1, 0, 8, 8) == ConvPath::kIm2col);  // unpadded
  CHECK(cpu::conv3x3_path(128, 128, 1, 1, 0, 8, 8) == ConvPath::kIm2col);  // pointwise
  CHECK(cpu::conv3x3_path(256, 3, 1, 1, 0, 8, 8) == ConvPath::kIm2col);    // pointwise, few outputs
  {
    AlgoScope off(cpu::Conv3x3Algo::kIm2col);
    CHECK(cpu::conv3x3_path(256, 256, 3, 1, 1, 8, 8) == ConvPath::kIm2col);
    CHECK(cpu::conv3x3_path(256, 3, 3, 1, 1, 8, 8) == ConvPath::kIm2col);
  }
  {
    AlgoScope on(cpu::Conv3x3Algo::kDirect);
    CHECK(cpu::conv3x3_path(256, 256, 3, 1, 1, 8, 8) == ConvPath::kDirect);
    CHECK(cpu::conv3x3_path(256, 3, 3, 2, 1, 8, 8) == ConvPath::kIm2col);  // never for other geometry
  }
  {
    AlgoScope on(cpu::Conv3x3Algo::kWinograd4);
    CHECK(cpu::conv3x3_path(3, 2, 3, 1, 1, 8, 8) == ConvPath::kWinograd4);
    CHECK(cpu::conv3x3_path(3, 2, 3, 2, 1, 8, 8) == ConvPath::kIm2col);  // never for other geometry
  }
  AlgoScope on(cpu::Conv3x3Algo::kWinograd);
  CHECK(cpu::conv3x3_path(256, 256, 3, 1, 1, 8, 8) == ConvPath::kWinograd);  // F(2x2) when asked for
  CHECK(cpu::conv3x3_path(3, 2, 3, 1, 1, 8, 8) == ConvPath::kWinograd);
  CHECK(cpu::conv3x3_path(3, 2, 3, 2, 1, 8, 8) == ConvPath::kIm2col);  // never for other geometry
}

TEST_CASE("3x3 algorithm names round-trip and a bad one is rejected with the choices", "[conv2d_3x3][errors]") {
  for (cpu::Conv3x3Algo a : {cpu::Conv3x3Algo::kAuto, cpu::Conv3x3Algo::kIm2col, cpu::Conv3x3Algo::kWinograd,
                             cpu::Conv3x3Algo::kWinograd4, cpu::Conv3x3Algo::kDirect})
    CHECK(cpu::parse_conv3x3_algo(cpu::conv3x3_algo_name(a), "x") == a);
  REQUIRE_THROWS_WITH(cpu::parse_conv3x3_algo("fft", "environment variable SAGAN_CONV3X3"),
                      Catch::Contains("SAGAN_CONV3X3") && Catch::Contains("'fft'") && Catch::Contains("winograd4"));
}

TEST_CASE("3x3 conv2d paths name the op and shapes on a wrong kernel size", "[conv2d_3x3][errors]") {
  Tensor x = Tensor::zeros({2, 3, 5, 5}), w1 = Tensor::zeros({4, 3, 1, 1}), y = Tensor::zeros({2, 4, 5, 5});
  Tensor gw = Tensor::zeros({4, 3, 1, 1});
  REQUIRE_THROWS_WITH(cpu::winograd_conv2d(x, w1, std::nullopt, y, 2),
                      Catch::Contains("conv2d") && Catch::Contains("3x3") && Catch::Contains("[4, 3, 1, 1]"));
  REQUIRE_THROWS_WITH(cpu::winograd_conv2d_backward_input(y, w1, x, 4),
                      Catch::Contains("conv2d_backward_input") && Catch::Contains("[4, 3, 1, 1]"));
  REQUIRE_THROWS_WITH(cpu::winograd_conv2d_backward_weight(y, x, gw, 2),
                      Catch::Contains("conv2d_backward_weight") && Catch::Contains("[4, 3, 1, 1]"));
  Tensor w3 = Tensor::zeros({4, 3, 3, 3});
  REQUIRE_THROWS_WITH(cpu::winograd_conv2d(x, w3, std::nullopt, y, 3),
                      Catch::Contains("conv2d") && Catch::Contains("2x2 or 4x4") && Catch::Contains("got 3"));
  REQUIRE_THROWS_WITH(cpu::direct_conv2d(x, w1, std::nullopt, y),
                      Catch::Contains("conv2d") && Catch::Contains("3x3") && Catch::Contains("[4, 3, 1, 1]"));
  REQUIRE_THROWS_WITH(cpu::direct_conv2d_backward_input(y, w1, x),
                      Catch::Contains("conv2d_backward_input") && Catch::Contains("[4, 3, 1, 1]"));
  REQUIRE_THROWS_WITH(cpu::direct_conv2d_backward_weight(y, x, gw),
                      Catch::Contains("conv2d_backward_weight") && Catch::Contains("[4, 3, 1, 1]"));
}
