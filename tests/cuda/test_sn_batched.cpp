// The batched spectral-norm power iteration on the GPU against float64 loops
// doing the same steps (v = normalize(W^T u), then u = normalize(W v), sigma
// = u^T W v) over several iterations, on SAGAN-128's generator and
// discriminator SN layer set (up to 16384 x 128 and 1024 x 9216) plus odd
// sizes. u and v are unit vectors: max |error| <= 1e-5 (fp32). Both
// versions: Columns (3 launches) and RowChunks (2 launches, integer tickets
// in a workspace that starts as garbage). Skips, saying so, where no CUDA
// device is present.
#include <cuda_runtime.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "sagan/kernels/cuda/sn_power_batched.h"
#include "tests/cuda/raw_cuda.h"

namespace {

// SAGAN-128 (ch = 64) SN matrices (out, in * k * k), generator then
// discriminator; the list docs/benchmarks.md gives.
std::vector<std::pair<int, int>> sagan128_sn_shapes() {
  return {// G: linear z -> 4x4x1024, five up-blocks (conv1, conv2, shortcut), attention at 64x64 (C=128), head
          {16384, 128},
          {1024, 9216},
          {1024, 9216},
          {1024, 1024},
          {512, 9216},
          {512, 4608},
          {512, 1024},
          {256, 4608},
          {256, 2304},
          {256, 512},
          {128, 2304},
          {128, 1152},
          {128, 256},
          {64, 1152},
          {64, 576},
          {64, 128},
          {16, 128},
          {16, 128},
          {64, 128},
          {128, 64},
          {3, 576},
          // D: first block, five down-blocks, attention at 64x64 (C=64), linear, class embedding
          {64, 27},
          {64, 576},
          {64, 3},
          {8, 64},
          {8, 64},
          {32, 64},
          {64, 32},
          {128, 576},
          {128, 1152},
          {128, 64},
          {256, 1152},
          {256, 2304},
          {256, 128},
          {512, 2304},
          {512, 4608},
          {512, 256},
          {1024, 4608},
          {1024, 9216},
          {1024, 512},
          {1024, 9216},
          {1024, 9216},
          {1, 1024},
          {1000, 1024}};
}

struct Layer {
  int rows = 0, cols = 0;
  std::vector<float> w, u, v;
  std::vector<double> ru, rv;
  double rsigma = 0;
  float *dw = nullptr, *du = nullptr, *dv = nullptr;
};

void reference_step(Layer& L, double eps) {
  std::vector<double> t(L.cols, 0.0), r(L.rows, 0.0);
  for (int i = 0; i < L.rows; ++i)
    for (int j = 0; j < L.cols; ++j) t[j] += double(L.w[size_t(i) * L.cols + j]) * L.ru[i];
  double nt = 0;
  for (double x : t) nt += x * x;
  nt = std::max(std::sqrt(nt), eps);
  for (int j = 0; j < L.cols; ++j) L.rv[j] = t[j] / nt;
  for (int i = 0; i < L.rows; ++i)
    for (int j = 0; j < L.cols; ++j) r[i] += double(L.w[size_t(i) * L.cols + j]) * L.rv[j];
  double nr = 0;
  for (double x : r) nr += x * x;
  nr = std::max(std::sqrt(nr), eps);
  L.rsigma = 0;
  for (int i = 0; i < L.rows; ++i) {
    L.ru[i] = r[i] / nr;
    L.rsigma += L.ru[i] * r[i];
  }
}

using sagan::fused::SnPowerVariant;

void run(const std::vector<std::pair<int, int>>& shapes, int iters, uint32_t seed,
         SnPowerVariant variant = SnPowerVariant::Columns) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> n01(0.f, 1.f);
  std::vector<Layer> layers;
  for (auto [r, c] : shapes) {
    Layer L;
    L.rows = r;
    L.cols = c;
    const float scale = 1.f / std::sqrt(float(c));
    L.w.resize(size_t(r) * c);
    for (float& x : L.w) x = n01(gen) * scale;
    L.u.resize(r);
    double nu = 0;
    for (float& x : L.u) {
      x = n01(gen);
      nu += double(x) * x;
    }
    for (float& x : L.u) x = float(x / std::sqrt(nu));
    L.v.assign(c, NAN);
    L.ru.assign(L.u.begin(), L.u.end());
    L.rv.assign(c, 0.0);
    CUDA_OK(cudaMalloc(&L.dw, L.w.size() * sizeof(float)));
    CUDA_OK(cudaMalloc(&L.du, L.u.size() * sizeof(float)));
    CUDA_OK(cudaMalloc(&L.dv, L.v.size() * sizeof(float)));
    CUDA_OK(cudaMemcpy(L.dw, L.w.data(), L.w.size() * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(L.du, L.u.data(), L.u.size() * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(L.dv, 0xFF, L.v.size() * sizeof(float)));  // NaN: must be overwritten
    layers.push_back(std::move(L));
  }
  std::vector<sagan::fused::SnMatrixF32> mats;
  for (Layer& L : layers) mats.push_back({L.dw, L.du, L.dv, L.rows, L.cols});
  const size_t ws_bytes =
      sagan::fused::sn_power_iteration_batched_workspace_bytes(mats.data(), int(mats.size()), variant);
  REQUIRE(ws_bytes > 0);
  void* ws = nullptr;
  float* sigma = nullptr;
  CUDA_OK(cudaMalloc(&ws, ws_bytes));
  CUDA_OK(cudaMemset(ws, 0xFF, ws_bytes));  // garbage: nothing may rely on zeros
  CUDA_OK(cudaMalloc(&sigma, mats.size() * sizeof(float)));
  CUDA_OK(cudaMemset(sigma, 0xFF, mats.size() * sizeof(float)));
  for (int it = 0; it < iters; ++it) {
    CUDA_OK(sagan::fused::sn_power_iteration_batched_f32(mats.data(), int(mats.size()), 1e-12f, sigma, ws, ws_bytes,
                                                         nullptr, variant));
    for (Layer& L : layers) reference_step(L, 1e-12);
  }
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> hsigma(mats.size());
  CUDA_OK(cudaMemcpy(hsigma.data(), sigma, hsigma.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < layers.size(); ++i) {
    Layer& L = layers[i];
    CUDA_OK(cudaMemcpy(L.u.data(), L.du, L.u.size() * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(L.v.data(), L.dv, L.v.size() * sizeof(float), cudaMemcpyDeviceToHost));
    double eu = 0, ev = 0;
    for (int x = 0; x < L.rows; ++x) eu = std::max(eu, std::isfinite(L.u[x]) ? std::abs(L.u[x] - L.ru[x]) : INFINITY);
    for (int x = 0; x < L.cols; ++x) ev = std::max(ev, std::isfinite(L.v[x]) ? std::abs(L.v[x] - L.rv[x]) : INFINITY);
    INFO("layer " << i << " (" << L.rows << " x " << L.cols << "), iteration " << iters << ", variant "
                  << int(variant));
    CHECK(eu <= 1e-5);
    CHECK(ev <= 1e-5);
    CHECK(std::abs(hsigma[i] - L.rsigma) <= 1e-5 * std::max(1.0, L.rsigma));
    cudaFree(L.dw);
    cudaFree(L.du);
    cudaFree(L.dv);
  }
  cudaFree(ws);
  cudaFree(sigma);
}

}  // namespace

// [sn_batched] stays small enough for compute-sanitizer's racecheck; the full
// SAGAN-128 layer set is [sn_batched_sagan].
TEST_CASE("cuda batched power iteration matches float64 on SAGAN-128's SN layers", "[cuda][sn_batched_sagan]") {
  SKIP_WITHOUT_GPU();
  run(sagan128_sn_shapes(), 3, 1);
}

TEST_CASE("cuda batched power iteration at odd sizes and over several launch groups", "[cuda][sn_batched]") {
  SKIP_WITHOUT_GPU();
  std::vector<std::pair<int, int>> shapes{{1, 1}, {3, 5}, {37, 300}, {257, 27}, {5, 1031}, {33, 9217}};
  for (int i = 0; i < 60; ++i) shapes.push_back({1 + (i * 37) % 301, 1 + (i * 53) % 777});
  run(shapes, 2, 2);
}

TEST_CASE("cuda row-chunked power iteration matches float64 on SAGAN-128's SN layers", "[cuda][sn_batched_sagan]") {
  SKIP_WITHOUT_GPU();
  run(sagan128_sn_shapes(), 3, 1, SnPowerVariant::RowChunks);
}

TEST_CASE("cuda row-chunked power iteration at odd sizes and over several launch groups", "[cuda][sn_batched]") {
  SKIP_WITHOUT_GPU();
  std::vector<std::pair<int, int>> shapes{{1, 1}, {3, 5}, {37, 300}, {2000, 36}, {5, 1031}, {33, 9217}, {3, 8200}};
  for (int i = 0; i < 60; ++i) shapes.push_back({1 + (i * 37) % 301, 1 + (i * 53) % 777});
  run(shapes, 2, 2, SnPowerVariant::RowChunks);
}

TEST_CASE("cuda batched power iteration is bitwise reproducible", "[cuda][sn_batched][slow_under_sanitizer]") {
  SKIP_WITHOUT_GPU();
  for (SnPowerVariant variant : {SnPowerVariant::Columns, SnPowerVariant::RowChunks}) {
    INFO("variant " << int(variant));
    const int rows = 3000, cols = 1152;
    std::mt19937 gen(3);
    std::normal_distribution<float> n01(0.f, 1.f);
    std::vector<float> w(size_t(rows) * cols), u(rows);
    for (float& x : w) x = n01(gen);
    for (float& x : u) x = n01(gen);
    std::vector<float> results[2];
    for (auto& res : results) {
      float *dw, *du, *dv;
      CUDA_OK(cudaMalloc(&dw, w.size() * 4));
      CUDA_OK(cudaMalloc(&du, u.size() * 4));
      CUDA_OK(cudaMalloc(&dv, cols * 4));
      CUDA_OK(cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
      CUDA_OK(cudaMemcpy(du, u.data(), u.size() * 4, cudaMemcpyHostToDevice));
      const sagan::fused::SnMatrixF32 m{dw, du, dv, rows, cols};
      const size_t bytes = sagan::fused::sn_power_iteration_batched_workspace_bytes(&m, 1, variant);
      void* ws;
      CUDA_OK(cudaMalloc(&ws, bytes));
      // Two iterations: the second reuses the tickets the first left behind.
      CUDA_OK(sagan::fused::sn_power_iteration_batched_f32(&m, 1, 1e-12f, nullptr, ws, bytes, nullptr, variant));
      CUDA_OK(sagan::fused::sn_power_iteration_batched_f32(&m, 1, 1e-12f, nullptr, ws, bytes, nullptr, variant));
      res.resize(rows + cols);
      CUDA_OK(cudaMemcpy(res.data(), du, rows * 4, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(res.data() + rows, dv, cols * 4, cudaMemcpyDeviceToHost));
      cudaFree(dw);
      cudaFree(du);
      cudaFree(dv);
      cudaFree(ws);
    }
    CHECK(std::memcmp(results[0].data(), results[1].data(), results[0].size() * 4) == 0);
    const sagan::fused::SnMatrixF32 bad{nullptr, nullptr, nullptr, 0, 3};
    CHECK(sagan::fused::sn_power_iteration_batched_f32(&bad, 1, 1e-12f, nullptr, nullptr, 0, nullptr, variant) ==
          cudaErrorInvalidValue);
  }
}
