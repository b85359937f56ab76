// The batched spectral-norm power-iteration kernels
// (kernels/cuda/sn_power_batched_kernels.cuh) run on the CPU through the
// fiber emulator, against float64 loops doing the same steps in the same
// order (v = normalize(W^T u), then u = normalize(W v), sigma = u^T W v),
// over several iterations, odd sizes, more matrices than one launch holds,
// misaligned rows and zero vectors (the eps branch).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/ops.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "kernels/cuda/sn_power_batched_kernels.cuh"
// clang-format on

namespace {

namespace sn = sagan::fused::sn;
using sagan::fused::Status;

struct EmuLauncher {
  int num_sms() const { return 4; }
  template <class... P, class... A>
  void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    cuda_emu::launch(kernel, grid, block, smem, args...);
  }
  void zero(float* p, size_t n) { std::fill(p, p + n, 0.f); }
};

struct Layer {
  Layer(int r, int c, int offset = 0, bool zero = false) : rows(r), cols(c), w_offset(offset), zero_u(zero) {}
  int rows, cols;
  int w_offset;  // floats before W in its buffer (1 = misaligned rows)
  bool zero_u;
  std::vector<float> wbuf, u, v;
  std::vector<double> ru, rv;  // float64 reference state
  double rsigma = 0;
  const float* w() const { return wbuf.data() + w_offset; }
};

void init(Layer& L, std::mt19937& gen) {
  std::normal_distribution<float> n01(0.f, 1.f);
  L.wbuf.assign(size_t(L.rows) * L.cols + L.w_offset, NAN);
  for (size_t i = 0; i < size_t(L.rows) * L.cols; ++i) L.wbuf[L.w_offset + i] = n01(gen) * 0.1f;
  L.u.resize(L.rows);
  L.v.resize(L.cols);
  double nu = 0;
  for (float& x : L.u) {
    x = L.zero_u ? 0.f : n01(gen);
    nu += double(x) * x;
  }
  for (float& x : L.u) x = static_cast<float>(x / std::max(std::sqrt(nu), 1e-12));
  std::fill(L.v.begin(), L.v.end(), NAN);  // overwritten by the first step
  L.ru.assign(L.u.begin(), L.u.end());
  L.rv.assign(L.cols, 0.0);
}

void reference_step(Layer& L, double eps) {
  std::vector<double> t(L.cols, 0.0), r(L.rows, 0.0);
  const float* w = L.w();
  for (int i = 0; i < L.rows; ++i)
    for (int j = 0; j < L.cols; ++j) t[j] += double(w[size_t(i) * L.cols + j]) * L.ru[i];
  double nt = 0;
  for (double x : t) nt += x * x;
  nt = std::max(std::sqrt(nt), eps);
  for (int j = 0; j < L.cols; ++j) L.rv[j] = t[j] / nt;
  for (int i = 0; i < L.rows; ++i)
    for (int j = 0; j < L.cols; ++j) r[i] += double(w[size_t(i) * L.cols + j]) * L.rv[j];
  double nr = 0;
  for (double x : r) nr += x * x;
  const double nrm = std::max(std::sqrt(nr), eps);
  L.rsigma = 0;
  for (int i = 0; i < L.rows; ++i) {
    L.ru[i] = r[i] / nrm;
    L.rsigma += L.ru[i] * r[i];
  }
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double e = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    e = std::max(e, std::abs(a[i] - b[i]));
  }
  return e;
}

// Runs `iters` batched steps over all layers and the reference beside them.
void run_and_compare(std::vector<Layer>& layers, int iters, float eps) {
  std::vector<sn::MatIn> mats;
  for (Layer& L : layers) mats.push_back({L.w(), L.u.data(), L.v.data(), L.rows, L.cols});
  const size_t ws_bytes = sn::workspace_bytes(mats.data(), int(mats.size()));
  REQUIRE(ws_bytes > 0);
  std::vector<float4> ws(ws_bytes / sizeof(float4) + 1);  // 16-byte aligned
  std::vector<float> sigma(layers.size(), NAN);
  EmuLauncher launcher;
  for (int it = 0; it < iters; ++it) {
    REQUIRE(sn::power_iteration(launcher, mats.data(), int(mats.size()), eps, sigma.data(), ws.data(), ws_bytes) ==
            Status::Ok);
    for (Layer& L : layers) reference_step(L, eps);
  }
  // u, v are unit vectors (entries up to 1): an absolute bound is a relative
  // one. fp32 lands near 1e-7 here.
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& L = layers[i];
    INFO("layer " << i << " (" << L.rows << " x " << L.cols << ", w offset " << L.w_offset << ")");
    CHECK(max_abs_diff(L.u, L.ru) <= 1e-5);
    CHECK(max_abs_diff(L.v, L.rv) <= 1e-5);
    CHECK(std::abs(sigma[i] - L.rsigma) <= 1e-5 * std::max(1.0, std::abs(L.rsigma)));
  }
}

}  // namespace

TEST_CASE("batched power iteration matches float64 loops step for step, emulated", "[sn_batched][cuda_emu]") {
  std::mt19937 gen(7);
  // Odd sizes; cols not a multiple of 4 (scalar row reads); rows above and
  // below 256 and 8 (partial column and row tiles); a 1 x 1.
  std::vector<Layer> layers;
  for (auto [r, c] : std::vector<std::pair<int, int>>{
           {1, 1}, {3, 5}, {37, 300}, {64, 576}, {130, 9}, {5, 1030}, {257, 27}, {16, 1152}})
    layers.push_back(Layer{r, c});
  for (Layer& L : layers) init(L, gen);
  run_and_compare(layers, 4, 1e-12f);
}

TEST_CASE("batched power iteration spans several launch groups and odd alignments, emulated",
          "[sn_batched][cuda_emu]") {
  std::mt19937 gen(8);
  std::vector<Layer> layers;
  // More than one launch's 48 matrices, in an order unlike the size order
  // the kernels use, so sigma must land at each caller's index.
  for (int i = 0; i < sn::kMaxPerLaunch + 5; ++i) layers.push_back(Layer{1 + (i * 7) % 19, 4 + (i * 13) % 37});
  // Rows of 8 floats that start 4 bytes past a 16-byte boundary: the
  // float4 path must not be taken.
  layers.push_back(Layer{9, 8, 1});
  // u = 0: t = 0 and both norms hit eps; u, v and sigma come out 0.
  layers.push_back(Layer{6, 10, 0, true});
  for (Layer& L : layers) init(L, gen);
  run_and_compare(layers, 2, 1e-12f);
  CHECK(layers.back().u == std::vector<float>(6, 0.f));
}

TEST_CASE("batched power iteration is bitwise reproducible, emulated", "[sn_batched][cuda_emu]") {
  std::mt19937 gen(9);
  Layer a{70, 300}, b{70, 300};
  init(a, gen);
  b = a;
  for (Layer* L : {&a, &b}) {
    std::vector<sn::MatIn> mats{{L->w(), L->u.data(), L->v.data(), L->rows, L->cols}};
    const size_t bytes = sn::workspace_bytes(mats.data(), 1);
    std::vector<float4> ws(bytes / sizeof(float4) + 1);
    EmuLauncher launcher;
    REQUIRE(sn::power_iteration(launcher, mats.data(), 1, 1e-12f, nullptr, ws.data(), bytes) == Status::Ok);
  }
  CHECK(std::memcmp(a.u.data(), b.u.data(), a.u.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(a.v.data(), b.v.data(), a.v.size() * sizeof(float)) == 0);
}

TEST_CASE("batched power iteration rejects invalid arguments", "[sn_batched][cuda_emu]") {
  float x[4] = {};
  EmuLauncher launcher;
  std::vector<float4> ws(64);
  const sn::MatIn ok{x, x, x, 1, 1};
  const sn::MatIn empty_rows{x, x, x, 0, 3};
  const sn::MatIn null_w{nullptr, x, x, 2, 2};
  CHECK(sn::workspace_bytes(&empty_rows, 1) == 0);
  CHECK(sn::power_iteration(launcher, &empty_rows, 1, 1e-12f, nullptr, ws.data(), 1024) == Status::Invalid);
  CHECK(sn::power_iteration(launcher, &null_w, 1, 1e-12f, nullptr, ws.data(), 1024) == Status::Invalid);
  CHECK(sn::power_iteration(launcher, &ok, 1, 0.f, nullptr, ws.data(), 1024) == Status::Invalid);   // eps
  CHECK(sn::power_iteration(launcher, &ok, 1, 1e-12f, nullptr, ws.data(), 4) == Status::Invalid);   // too small
  CHECK(sn::power_iteration(launcher, &ok, 1, 1e-12f, nullptr, nullptr, 1024) == Status::Invalid);  // no workspace
  CHECK(sn::power_iteration(launcher, &ok, 0, 1e-12f, nullptr, nullptr, 0) == Status::Ok);          // nothing to do
}

TEST_CASE("batched power iteration agrees with the engine's CPU power_iteration, emulated", "[sn_batched][cuda_emu]") {
  using sagan::Tensor;
  std::mt19937 gen(10);
  std::vector<Layer> layers{Layer{37, 300}, Layer{130, 9}, Layer{64, 576}};
  for (Layer& L : layers) init(L, gen);
  std::vector<Tensor> w, u, v;
  std::vector<sn::MatIn> mats;
  for (Layer& L : layers) {
    w.push_back(Tensor::from_vector(std::vector<float>(L.w(), L.w() + size_t(L.rows) * L.cols), {L.rows, L.cols}));
    u.push_back(Tensor::from_vector(L.u, {L.rows}));
    v.push_back(Tensor::zeros({L.cols}));
    mats.push_back({L.w(), L.u.data(), L.v.data(), L.rows, L.cols});
  }
  const size_t bytes = sn::workspace_bytes(mats.data(), int(mats.size()));
  std::vector<float4> ws(bytes / sizeof(float4) + 1);
  EmuLauncher launcher;
  for (int it = 0; it < 3; ++it) {
    REQUIRE(sn::power_iteration(launcher, mats.data(), int(mats.size()), 1e-12f, nullptr, ws.data(), bytes) ==
            Status::Ok);
    sagan::power_iteration(w, u, v, 1e-12);
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    INFO("layer " << i);
    CHECK(max_abs_diff(layers[i].u, u[i].to_vector()) <= 1e-5);
    CHECK(max_abs_diff(layers[i].v, v[i].to_vector()) <= 1e-5);
  }
}
