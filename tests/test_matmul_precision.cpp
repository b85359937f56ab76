// --precision tf32|bf16 on the CPU (core/matmul_precision.h,
// kernels/cpu/operand_rounding.h): bmm and the convolutions compute from
// operands rounded as the tensor cores round them, against float64 loops over
// the same rounded numbers; bf16 convolution results (and gradients) are
// bf16 numbers, with the bias added afterwards; float64 is never rounded; the
// names and the trainer's setting.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/error.h"
#include "sagan/core/matmul_precision.h"
#include "sagan/core/reduced_precision.h"
#include "sagan/core/rng.h"
#include "sagan/core/tensor.h"
#include "sagan/models/trainer.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;

namespace {

Backend& cpu_kernels() { return backend_for(Device::cpu()); }

float round_to(MatmulPrecision p, float x) {
  return p == MatmulPrecision::Bf16 ? round_bf16(x) : p == MatmulPrecision::Tf32 ? round_tf32(x) : x;
}

std::vector<float> floats(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

// a (B, M, K) @ b (B, K, N) in float64 from operands rounded to p.
std::vector<double> bmm_reference(const Tensor& a, const Tensor& b, MatmulPrecision p) {
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  const std::vector<float> av = floats(a), bv = floats(b);
  std::vector<double> out(static_cast<size_t>(B * M * N), 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += double(round_to(p, av[static_cast<size_t>((i * M + m) * K + k)])) *
               double(round_to(p, bv[static_cast<size_t>((i * K + k) * N + n)]));
        out[static_cast<size_t>((i * M + m) * N + n)] = s;
      }
  return out;
}

// Cross-correlation x (B, Ci, H, W) * w (Co, Ci, k, k), stride 1, pad p, in
// float64 from operands rounded to `prec`.
std::vector<double> conv_reference(const Tensor& x, const Tensor& w, int64_t pad, MatmulPrecision prec) {
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = w.size(0), k = w.size(2);
  const int64_t Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
  const std::vector<float> xv = floats(x), wv = floats(w);
  std::vector<double> out(static_cast<size_t>(B * Co * Ho * Wo), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t y = 0; y < Ho; ++y)
        for (int64_t z = 0; z < Wo; ++z) {
          double s = 0;
          for (int64_t c = 0; c < Ci; ++c)
            for (int64_t dy = 0; dy < k; ++dy)
              for (int64_t dz = 0; dz < k; ++dz) {
                const int64_t iy = y + dy - pad, iz = z + dz - pad;
                if (iy < 0 || iy >= H || iz < 0 || iz >= W) continue;
                s += double(round_to(prec, xv[static_cast<size_t>(((b * Ci + c) * H + iy) * W + iz)])) *
                     double(round_to(prec, wv[static_cast<size_t>(((o * Ci + c) * k + dy) * k + dz)]));
              }
          out[static_cast<size_t>(((b * Co + o) * Ho + y) * Wo + z)] = s;
        }
  return out;
}

// The two gradients of that convolution for the output gradient gy, in
// float64 from operands rounded to `prec`: gx (B, Ci, H, W), gw (Co, Ci, k, k).
void conv_grad_reference(const Tensor& x, const Tensor& w, const Tensor& gy, int64_t pad, MatmulPrecision prec,
                         std::vector<double>& gx, std::vector<double>& gw) {
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = w.size(0), k = w.size(2);
  const int64_t Ho = gy.size(2), Wo = gy.size(3);
  const std::vector<float> xv = floats(x), wv = floats(w), gv = floats(gy);
  gx.assign(xv.size(), 0.0);
  gw.assign(wv.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t y = 0; y < Ho; ++y)
        for (int64_t z = 0; z < Wo; ++z) {
          const double g = round_to(prec, gv[static_cast<size_t>(((b * Co + o) * Ho + y) * Wo + z)]);
          for (int64_t c = 0; c < Ci; ++c)
            for (int64_t dy = 0; dy < k; ++dy)
              for (int64_t dz = 0; dz < k; ++dz) {
                const int64_t iy = y + dy - pad, iz = z + dz - pad;
                if (iy < 0 || iy >= H || iz < 0 || iz >= W) continue;
                const size_t xi = static_cast<size_t>(((b * Ci + c) * H + iy) * W + iz);
                const size_t wi = static_cast<size_t>(((o * Ci + c) * k + dy) * k + dz);
                gx[xi] += g * double(round_to(prec, wv[wi]));
                gw[wi] += g * double(round_to(prec, xv[xi]));
              }
        }
}

double max_magnitude(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

bool is_bf16(float x) { return (std::bit_cast<uint32_t>(x) & 0xffffu) == 0; }

}  // namespace

TEST_CASE("matmul precision names round-trip and bad ones are rejected", "[matmul_precision]") {
  for (MatmulPrecision p : {MatmulPrecision::Fp32, MatmulPrecision::Tf32, MatmulPrecision::Bf16})
    CHECK(parse_matmul_precision(matmul_precision_name(p), "x") == p);
  REQUIRE_THROWS_WITH(parse_matmul_precision("fp16", "--precision"),
                      Catch::Contains("--precision") && Catch::Contains("'fp16'") && Catch::Contains("bf16"));
}

TEST_CASE("cpu bmm computes tf32 and bf16 products from rounded operands", "[matmul_precision]") {
  Rng gen(5);
  const Tensor a = Tensor::randn({3, 17, 33}, gen), b = Tensor::randn({3, 33, 9}, gen);
  Tensor plain = Tensor::empty({3, 17, 9});
  cpu_kernels().bmm(a, b, plain, 0.0);
  for (MatmulPrecision p : {MatmulPrecision::Tf32, MatmulPrecision::Bf16}) {
    INFO(matmul_precision_name(p));
    MatmulPrecisionScope scope(p);
    Tensor got = Tensor::empty({3, 17, 9});
    cpu_kernels().bmm(a, b, got, 0.0);
    const std::vector<double> ref = bmm_reference(a, b, p), g = got.to_vector(), f = plain.to_vector();
    double err = 0, moved = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      err = sagan::testing::max_keep_nan(err, std::abs(g[i] - ref[i]));
      moved = std::max(moved, std::abs(f[i] - ref[i]));
    }
    const double scale = max_magnitude(ref);
    CHECK(err <= 1e-6 * scale);  // float32 accumulation of 33 products
    // The rounding shows: fp32 products are far from the rounded ones
    // (bf16 keeps 8 bits, TF32 11).
    CHECK(moved >= (p == MatmulPrecision::Bf16 ? 1e-3 : 1e-4) * scale);
  }
}

TEST_CASE("cpu bf16 convolutions give bf16 results with the bias added after", "[matmul_precision]") {
  Rng gen(6);
  const Tensor x = Tensor::randn({2, 5, 9, 7}, gen), w = Tensor::randn({4, 5, 3, 3}, gen);
  const Tensor bias = Tensor::randn({4}, gen);
  MatmulPrecisionScope scope(MatmulPrecision::Bf16);
  Tensor out = Tensor::empty({2, 4, 9, 7});
  cpu_kernels().conv2d(x, w, bias, out, Conv2dGeom{1, 1});
  const std::vector<double> ref = conv_reference(x, w, 1, MatmulPrecision::Bf16);
  const std::vector<float> got = floats(out), bv = floats(bias);
  double err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const float conv = got[i] - bv[(i / 63) % 4];  // the bf16 result, up to a float32 rounding
    // Within one bf16 rounding of the float64 result (float32 sums may round
    // the other way at a tie boundary).
    err = sagan::testing::max_keep_nan(err, std::abs(double(conv) - ref[i]) / std::max(std::abs(ref[i]), 1e-3));
  }
  CHECK(err <= 1.0 / 256);

  // Gradients through both backward kernels are bf16 numbers too, and
  // agree with float64 loops over bf16 operands to within bf16 roundings of
  // the partial sums (norm-wise: gx adds k*k rounded partials per pixel).
  // The bound catches a wrong gradient; it is too loose to tell whether
  // the operands were rounded (float32 ones would move results ~0.3%).
  const Tensor gy = Tensor::randn({2, 4, 9, 7}, gen);
  Tensor gx = Tensor::empty({2, 5, 9, 7}), gw = Tensor::empty({4, 5, 3, 3});
  cpu_kernels().conv2d_backward_input(gy, w, gx, Conv2dGeom{1, 1});
  cpu_kernels().conv2d_backward_weight(gy, x, gw, Conv2dGeom{1, 1});
  std::vector<double> gx_ref, gw_ref;
  conv_grad_reference(x, w, gy, 1, MatmulPrecision::Bf16, gx_ref, gw_ref);
  for (const auto& [name, got, ref] : {std::tuple{"gx", floats(gx), gx_ref}, std::tuple{"gw", floats(gw), gw_ref}}) {
    double gerr = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      gerr = sagan::testing::max_keep_nan(gerr, std::abs(double(got[i]) - ref[i]));
    INFO(name << ": max abs error " << gerr << " for max |ref| " << max_magnitude(ref));
    CHECK(gerr <= max_magnitude(ref) / 64);
  }
  int not_bf16 = 0;
  for (float v : floats(gx)) not_bf16 += !is_bf16(v);
  for (float v : floats(gw)) not_bf16 += !is_bf16(v);
  CHECK(not_bf16 == 0);
  // And the forward without a bias is bf16 numbers exactly.
  Tensor nob = Tensor::empty({2, 4, 9, 7});
  cpu_kernels().conv2d(x, w, std::nullopt, nob, Conv2dGeom{1, 1});
  for (float v : floats(nob)) not_bf16 += !is_bf16(v);
  CHECK(not_bf16 == 0);
}

TEST_CASE("float64 and fp32 precision are never rounded", "[matmul_precision]") {
  Rng gen(7);
  const Tensor a = Tensor::randn({2, 6, 5}, gen, DType::F64), b = Tensor::randn({2, 5, 4}, gen, DType::F64);
  Tensor plain = Tensor::empty({2, 6, 4}, DType::F64), bf = Tensor::empty({2, 6, 4}, DType::F64);
  cpu_kernels().bmm(a, b, plain, 0.0);
  {
    MatmulPrecisionScope scope(MatmulPrecision::Bf16);
    cpu_kernels().bmm(a, b, bf, 0.0);
  }
  CHECK(plain.to_vector() == bf.to_vector());
  CHECK(matmul_precision() == MatmulPrecision::Fp32);  // the scope restored it (and the default is fp32)
}

TEST_CASE("the trainer's --precision reaches the process-wide setting", "[matmul_precision]") {
  auto ds = std::make_shared<testing::TinyDataset>(8);
  TrainConfig cfg = testing::tiny_config();
  CHECK(cfg.precision == "fp32");
  cfg.precision = "bf16";
  {
    Trainer t(cfg, ds);
    CHECK(matmul_precision() == MatmulPrecision::Bf16);
    const StepStats s = t.step();  // a whole emulated bf16 step runs and stays finite
    CHECK(std::isfinite(s.loss_d));
    CHECK(std::isfinite(s.loss_g));
  }
  cfg.precision = "fp32";
  { Trainer t(cfg, ds); }
  CHECK(matmul_precision() == MatmulPrecision::Fp32);
}
