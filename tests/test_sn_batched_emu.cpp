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

#include "sagan/core/ops.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/sn_power_batched_kernels.cuh"
#include "sagan/kernels/cuda/sn_power_rowchunk_kernels.cuh"
#include "tests/cuda/emu/emu_launcher.h"
// clang-format on

namespace {

namespace sn = sagan::fused::sn;
namespace snr = sagan::fused::snr;
using sagan::fused::Status;

using sagan::emutest::EmuLauncher;  // 4 SMs

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

// The two batched implementations behind one interface (both take
// fused::SnMatIn): the column-split kernels (3 launches) and the row-chunked
// ones (2 launches).
struct Columns {
  static constexpr const char* name = "columns";
  static size_t bytes(const std::vector<sn::MatIn>& m) { return sn::workspace_bytes(m.data(), int(m.size())); }
  static Status run(EmuLauncher& l, const std::vector<sn::MatIn>& m, float eps, float* sigma, void* ws, size_t b) {
    return sn::power_iteration(l, m.data(), int(m.size()), eps, sigma, ws, b);
  }
};
struct RowChunks {
  static constexpr const char* name = "row-chunks";
  static size_t bytes(const std::vector<sn::MatIn>& m) { return snr::workspace_bytes(m.data(), int(m.size())); }
  static Status run(EmuLauncher& l, const std::vector<sn::MatIn>& m, float eps, float* sigma, void* ws, size_t b) {
    return snr::power_iteration(l, m.data(), int(m.size()), eps, sigma, ws, b);
  }
};

// A workspace whose bytes start as garbage (NaN): nothing may rely on it
// being zero.
std::vector<float4> garbage_workspace(size_t bytes) {
  std::vector<float4> ws(bytes / sizeof(float4) + 1);  // 16-byte aligned
  std::memset(static_cast<void*>(ws.data()), 0xFF, ws.size() * sizeof(float4));
  return ws;
}

// Runs `iters` batched steps over all layers and the reference beside them
// (one workspace for all steps).
template <class Impl = Columns>
void run_and_compare(std::vector<Layer>& layers, int iters, float eps) {
  INFO(Impl::name);
  std::vector<sn::MatIn> mats;
  for (Layer& L : layers) mats.push_back({L.w(), L.u.data(), L.v.data(), L.rows, L.cols});
  const size_t ws_bytes = Impl::bytes(mats);
  REQUIRE(ws_bytes > 0);
  std::vector<float4> ws = garbage_workspace(ws_bytes);
  std::vector<float> sigma(layers.size(), NAN);
  EmuLauncher launcher;
  for (int it = 0; it < iters; ++it) {
    REQUIRE(Impl::run(launcher, mats, eps, sigma.data(), ws.data(), ws_bytes) == Status::Ok);
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
  // a under one schedule, b under the other: a race or an order that
  // depends on which warp runs first shows as different bits.
  for (Layer* L : {&a, &b}) {
    cuda_emu::ScheduleScope sched(L == &a ? cuda_emu::Schedule::Lockstep : cuda_emu::Schedule::RunAhead);
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

// ---- the row-chunked kernels (2 launches) ----

TEST_CASE("row-chunked power iteration matches float64 loops step for step, emulated", "[sn_batched][cuda_emu]") {
  std::mt19937 gen(17);
  // Tall-skinny matrices split into row chunks (2000 x 36: 16 chunks of 125
  // rows, row tiles of 64; 515 x 128 with 16-byte reads), wide ones split
  // into column tiles (5 x 1030 scalar, 16 x 2048 in float4 groups: two
  // tiles), a row wider than one shared-memory chunk of t (3 x 8200), odd
  // sizes and a 1 x 1.
  std::vector<Layer> layers;
  for (auto [r, c] : std::vector<std::pair<int, int>>{
           {1, 1}, {3, 5}, {37, 300}, {2000, 36}, {515, 128}, {5, 1030}, {16, 2048}, {257, 27}, {3, 8200}, {130, 9}})
    layers.push_back(Layer{r, c});
  for (Layer& L : layers) init(L, gen);
  run_and_compare<RowChunks>(layers, 4, 1e-12f);
}

TEST_CASE("row-chunked power iteration spans launch groups, odd alignments and zero vectors, emulated",
          "[sn_batched][cuda_emu]") {
  std::mt19937 gen(18);
  std::vector<Layer> layers;
  for (int i = 0; i < snr::kMaxPerLaunch + 5; ++i) layers.push_back(Layer{1 + (i * 7) % 19, 4 + (i * 13) % 37});
  layers.push_back(Layer{9, 8, 1});  // rows 4 bytes past a 16-byte boundary: scalar reads
  layers.push_back(Layer{6, 10, 0, true});
  for (Layer& L : layers) init(L, gen);
  run_and_compare<RowChunks>(layers, 2, 1e-12f);
  CHECK(layers.back().u == std::vector<float>(6, 0.f));
}

namespace {
// Counts kernel launches.
struct CountingLauncher : EmuLauncher {
  int launches = 0;
  template <class... P, class... A>
  void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    ++launches;
    EmuLauncher::launch(kernel, grid, block, smem, args...);
  }
};
}  // namespace

TEST_CASE("row-chunked power iteration: geometry and launches", "[sn_batched][cuda_emu]") {
  // SAGAN-128's 16384 x 128 input linear: 16 row chunks in launch 1 (the
  // column-split kernels give it one block), 256 row tiles of 64 in launch 2.
  const snr::Geometry g = snr::geometry(16384, 128, true);
  CHECK(g.n_chunks == 16);
  CHECK(g.col_tiles == 1);
  CHECK(g.rows_per_warp == 8);
  CHECK(g.row_tiles == 256);
  // A wide 1024 x 9216 (3x3 convolution, 1024 channels): 9 column tiles of
  // 1024, 4 row chunks, 8 rows per block in launch 2.
  const snr::Geometry w = snr::geometry(1024, 9216, true);
  CHECK(w.col_tiles == 9);
  CHECK(w.n_chunks == 4);
  CHECK(w.rows_per_warp == 2);
  // Two launches for a model's worth of matrices (44 here), however sized.
  CountingLauncher counting;
  std::mt19937 gen(19);
  std::vector<Layer> layers;
  for (int i = 0; i < 44; ++i) layers.push_back(Layer{1 + (i * 5) % 23, 1 + (i * 11) % 29});
  for (Layer& L : layers) init(L, gen);
  std::vector<snr::MatIn> mats;
  for (Layer& L : layers) mats.push_back({L.w(), L.u.data(), L.v.data(), L.rows, L.cols});
  const size_t bytes = snr::workspace_bytes(mats.data(), int(mats.size()));
  std::vector<float4> ws = garbage_workspace(bytes);
  REQUIRE(snr::power_iteration(counting, mats.data(), int(mats.size()), 1e-12f, nullptr, ws.data(), bytes) ==
          Status::Ok);
  CHECK(counting.launches == 2);
}

TEST_CASE("row-chunked power iteration is bitwise reproducible and rejects invalid arguments, emulated",
          "[sn_batched][cuda_emu]") {
  std::mt19937 gen(20);
  Layer a{700, 36}, b{700, 36};
  init(a, gen);
  b = a;
  for (Layer* L : {&a, &b}) {  // under the two schedules, as above
    cuda_emu::ScheduleScope sched(L == &a ? cuda_emu::Schedule::Lockstep : cuda_emu::Schedule::RunAhead);
    std::vector<sn::MatIn> mats{{L->w(), L->u.data(), L->v.data(), L->rows, L->cols}};
    const size_t bytes = RowChunks::bytes(mats);
    std::vector<float4> ws = garbage_workspace(bytes);
    EmuLauncher launcher;
    REQUIRE(RowChunks::run(launcher, mats, 1e-12f, nullptr, ws.data(), bytes) == Status::Ok);
  }
  CHECK(std::memcmp(a.u.data(), b.u.data(), a.u.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(a.v.data(), b.v.data(), a.v.size() * sizeof(float)) == 0);

  float x[4] = {};
  EmuLauncher launcher;
  std::vector<float4> ws(64);
  const snr::MatIn ok{x, x, x, 1, 1}, empty_rows{x, x, x, 0, 3}, null_w{nullptr, x, x, 2, 2};
  CHECK(snr::workspace_bytes(&empty_rows, 1) == 0);
  CHECK(snr::power_iteration(launcher, &empty_rows, 1, 1e-12f, nullptr, ws.data(), 1024) == Status::Invalid);
  CHECK(snr::power_iteration(launcher, &null_w, 1, 1e-12f, nullptr, ws.data(), 1024) == Status::Invalid);
  CHECK(snr::power_iteration(launcher, &ok, 1, 0.f, nullptr, ws.data(), 1024) == Status::Invalid);
  CHECK(snr::power_iteration(launcher, &ok, 1, 1e-12f, nullptr, ws.data(), 4) == Status::Invalid);
  CHECK(snr::power_iteration(launcher, &ok, 1, 1e-12f, nullptr, nullptr, 1024) == Status::Invalid);
  CHECK(snr::power_iteration(launcher, &ok, 0, 1e-12f, nullptr, nullptr, 0) == Status::Ok);
}

TEST_CASE("row-chunked power iteration agrees with the engine's CPU power_iteration, emulated",
          "[sn_batched][cuda_emu]") {
  using sagan::Tensor;
  std::mt19937 gen(21);
  std::vector<Layer> layers{Layer{37, 300}, Layer{1300, 9}, Layer{64, 576}};
  for (Layer& L : layers) init(L, gen);
  std::vector<Tensor> w, u, v;
  std::vector<sn::MatIn> mats;
  for (Layer& L : layers) {
    w.push_back(Tensor::from_vector(std::vector<float>(L.w(), L.w() + size_t(L.rows) * L.cols), {L.rows, L.cols}));
    u.push_back(Tensor::from_vector(L.u, {L.rows}));
    v.push_back(Tensor::zeros({L.cols}));
    mats.push_back({L.w(), L.u.data(), L.v.data(), L.rows, L.cols});
  }
  const size_t bytes = RowChunks::bytes(mats);
  std::vector<float4> ws = garbage_workspace(bytes);
  EmuLauncher launcher;
  for (int it = 0; it < 3; ++it) {
    REQUIRE(RowChunks::run(launcher, mats, 1e-12f, nullptr, ws.data(), bytes) == Status::Ok);
    sagan::power_iteration(w, u, v, 1e-12);
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    INFO("layer " << i);
    CHECK(max_abs_diff(layers[i].u, u[i].to_vector()) <= 1e-5);
    CHECK(max_abs_diff(layers[i].v, v[i].to_vector()) <= 1e-5);
  }
}
