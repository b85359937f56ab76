// One spectral-norm power iteration over SAGAN-128's SN layers (ch = 64;
// shapes in docs/benchmarks.md), float32. Rows per set (G, D, G + D):
//   batched           the batched kernels called directly
//                     (kernels/cuda/sn_power_batched.h, three launches for
//                     all layers, workspace allocated once outside the loop);
//   row-chunks        the same API's RowChunks version (two launches, W^T u
//                     split over row chunks too: the candidate for the 16384
//                     x 128 input linear, which the column split gives one
//                     block);
//   engine, row-chunks sagan::power_iteration with all layers under
//                     set_cuda_sn_power_impl(RowChunks);
//   engine, one call  sagan::power_iteration with all layers: the backend's
//                     float32 path, the same kernels plus its checks and a
//                     workspace from the caching allocator;
//   engine, per layer sagan::power_iteration one layer at a time (three
//                     launches per layer);
//   per-layer loop    the backend's per-matrix path (two cuBLAS gemv and two
//                     normalisation kernels per layer), which float32 takes
//                     only for strided u and v: here u and v are every other
//                     element of twice-as-long vectors to reach it (the path
//                     float64 always takes).
//
// Floor: W must be read twice (W^T u, then W v with v depending on all of
// W^T u), so bytes = 8 sum(rows * cols) + 8 sum(rows + cols) (u, v read and
// written); floor = bytes / HBM bandwidth. FLOPs (4 per weight) are far
// below any compute limit.
// Usage: bench_spectral_norm [--reps R] [--inner I] [--list]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "benchmarks/bench_args.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"

#ifdef SAGAN_WITH_CUDA
#include <cuda_runtime.h>

#include "benchmarks/cuda_bench.h"
#include "sagan/kernels/cuda/settings.h"
#include "sagan/kernels/cuda/sn_power_batched.h"
#endif

namespace {

using Shapes = std::vector<std::pair<int, int>>;

// (out, in * k * k) of every SN weight of SAGAN-128 with ch = 64.
Shapes generator_shapes() {
  return {{16384, 128},                                         // linear z (128) -> 4x4x1024
          {1024, 9216}, {1024, 9216}, {1024, 1024},             // up-block 1024 -> 1024 (conv1, conv2, shortcut)
          {512, 9216},  {512, 4608},  {512, 1024},              // 1024 -> 512
          {256, 4608},  {256, 2304},  {256, 512},               // 512 -> 256
          {128, 2304},  {128, 1152},  {128, 256},               // 256 -> 128
          {16, 128},    {16, 128},    {64, 128},    {128, 64},  // attention at 64x64, C = 128
          {64, 1152},   {64, 576},    {64, 128},                // 128 -> 64
          {3, 576}};                                            // head conv 3x3 -> RGB
}

Shapes discriminator_shapes() {
  return {{64, 27},     {64, 576},    {64, 3},                // first block 3 -> 64 (conv1, conv2, shortcut)
          {8, 64},      {8, 64},      {32, 64},    {64, 32},  // attention at 64x64, C = 64
          {128, 576},   {128, 1152},  {128, 64},              // down-block 64 -> 128
          {256, 1152},  {256, 2304},  {256, 128},             // 128 -> 256
          {512, 2304},  {512, 4608},  {512, 256},             // 256 -> 512
          {1024, 4608}, {1024, 9216}, {1024, 512},            // 512 -> 1024
          {1024, 9216}, {1024, 9216},                         // 1024 -> 1024, no downsample: identity shortcut
          {1, 1024},    {1000, 1024}};                        // linear head, class embedding (projection)
}

double floor_bytes(const Shapes& s) {
  double b = 0;
  for (auto [r, c] : s) b += 8.0 * r * c + 8.0 * (r + c);
  return b;
}

#ifdef SAGAN_WITH_CUDA

using sagan::bench::time_it;

// Prints the set's rows; returns how many failed (printed as "failed", the
// error on stderr), so that one failing version costs its row only.
int run_set(const char* name, const Shapes& shapes, int reps, int inner, double bw) {
  using namespace sagan;
  int failures = 0;
  auto guarded = [&](const char* what, auto&& measure) -> double {
    try {
      return measure();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_spectral_norm: %s, %s: %s\n", name, what, e.what());
      ++failures;
      return std::nan("");
    }
  };
  const Device dev = Device::cuda();
  Rng gen(3);
  std::vector<Tensor> w, u, v;
  for (auto [r, c] : shapes) {
    w.push_back(Tensor::randn({r, c}, gen, DType::F32, dev));
    Tensor uu = Tensor::randn({r}, gen, DType::F32, dev);
    u.push_back(uu);
    v.push_back(Tensor::zeros({c}, DType::F32, dev));
  }
  std::vector<fused::SnMatrixF32> mats;
  for (size_t i = 0; i < w.size(); ++i)
    mats.push_back({w[i].data<float>(), u[i].data<float>(), v[i].data<float>(), int(w[i].size(0)), int(w[i].size(1))});
  Tensor sigma = Tensor::empty({int64_t(mats.size())}, DType::F32, dev);
  auto direct = [&](fused::SnPowerVariant variant) {
    const size_t wsb = fused::sn_power_iteration_batched_workspace_bytes(mats.data(), int(mats.size()), variant);
    Tensor ws = Tensor::empty({int64_t(wsb / 4 + 4)}, DType::F32, dev);
    backend_for(dev).synchronize();
    return time_it(
        [&] {
          const cudaError_t e = fused::sn_power_iteration_batched_f32(
              mats.data(), int(mats.size()), 1e-12f, sigma.data<float>(), ws.data<float>(), wsb, nullptr, variant);
          if (e != cudaSuccess) throw std::runtime_error(cudaGetErrorString(e));
        },
        reps, inner);
  };
  const double t_batched = guarded("batched", [&] { return direct(fused::SnPowerVariant::Columns); });
  const double t_rows = guarded("row-chunks", [&] { return direct(fused::SnPowerVariant::RowChunks); });
  const double t_all =
      guarded("engine, one call", [&] { return time_it([&] { power_iteration(w, u, v, 1e-12); }, reps, inner); });
  const double t_all_rows = guarded("engine, row-chunks", [&] {
    set_cuda_sn_power_impl(SnPowerImpl::RowChunks);
    struct Restore {
      ~Restore() { set_cuda_sn_power_impl(SnPowerImpl::Columns); }
    } restore;
    return time_it([&] { power_iteration(w, u, v, 1e-12); }, reps, inner);
  });
  const double t_layer = guarded("engine, per layer", [&] {
    return time_it(
        [&] {
          for (size_t i = 0; i < w.size(); ++i) {
            std::vector<Tensor> ui{u[i]}, vi{v[i]};
            power_iteration({w[i]}, ui, vi, 1e-12);
          }
        },
        reps, inner);
  });
  // Strided u, v: the per-matrix gemv path.
  std::vector<Tensor> us, vs;
  for (size_t i = 0; i < w.size(); ++i) {
    us.push_back(Tensor::randn({2 * w[i].size(0)}, gen, DType::F32, dev).slice(0, 0, 2 * w[i].size(0), 2));
    vs.push_back(Tensor::zeros({2 * w[i].size(1)}, DType::F32, dev).slice(0, 0, 2 * w[i].size(1), 2));
  }
  const double t_gemv = guarded("per-layer loop", [&] {
    return time_it(
        [&] {
          for (size_t i = 0; i < w.size(); ++i) {
            std::vector<Tensor> ui{us[i]}, vi{vs[i]};
            backend_for(dev).power_iteration({w[i]}, ui, vi, 1e-12);
          }
        },
        reps, inner);
  });

  const double b = floor_bytes(shapes), fl = b / bw;
  double params = 0;
  for (auto [r, c] : shapes) params += double(r) * c;
  const int groups = (int(shapes.size()) + 47) / 48;
  const struct {
    const char* impl;
    double t;
    int launches;
  } rows[] = {{"batched", t_batched, 3 * groups},
              {"row-chunks", t_rows, 2 * groups},
              {"engine, one call", t_all, 3 * groups},
              {"engine, row-chunks", t_all_rows, 2 * groups},
              {"engine, per layer", t_layer, 3 * int(shapes.size())},
              {"per-layer loop", t_gemv, 4 * int(shapes.size())}};
  for (const auto& r : rows) {
    if (std::isnan(r.t))
      std::printf("%-6s %4zu %8.2f %-18s %8d failed\n", name, shapes.size(), params / 1e6, r.impl, r.launches);
    else
      std::printf("%-6s %4zu %8.2f %-18s %8d %10.1f %8.0f %10.1f %7.2f\n", name, shapes.size(), params / 1e6, r.impl,
                  r.launches, r.t * 1e6, b / r.t / 1e9, fl * 1e6, r.t / fl);
  }
  std::fflush(stdout);
  return failures;
}

#endif

}  // namespace

int main(int argc, char** argv) {
  int reps = 7, inner = 20;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc)
      reps = static_cast<int>(sagan::bench::int_arg("bench_spectral_norm", a, argv[++i], 1, 1000000));
    else if (a == "--inner" && i + 1 < argc)
      inner = static_cast<int>(sagan::bench::int_arg("bench_spectral_norm", a, argv[++i], 1, 1000000));
    else if (a == "--list")
      list = true;
    else {
      const bool help = a == "--help" || a == "-h";
      std::fprintf(help ? stdout : stderr, "usage: bench_spectral_norm [--reps R] [--inner I] [--list]\n");
      return help ? 0 : 2;
    }
  }
  if (list) {  // the layer sets and their floors' bytes
    for (const auto& [set, shapes] : {std::pair{"G", generator_shapes()}, std::pair{"D", discriminator_shapes()}}) {
      std::printf("%s: %zu matrices, floor %.1f MB:", set, shapes.size(), floor_bytes(shapes) / 1e6);
      for (auto [r, c] : shapes) std::printf(" %dx%d", r, c);
      std::printf("\n");
    }
    return 0;
  }
#ifndef SAGAN_WITH_CUDA
  (void)reps;
  (void)inner;
  std::printf("bench_spectral_norm: built without CUDA; nothing to measure (--list prints the layer sets)\n");
  return 0;
#else
  if (!sagan::cuda_available()) {
    std::printf("bench_spectral_norm: no CUDA device present; nothing to measure (--list prints the layer sets)\n");
    return 0;
  }
  const double bw = sagan::bench::device_rates().bw;
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  std::printf("device: %s, HBM %.2f TB/s; floor = (8 sum(rows cols) + 8 sum(rows + cols)) bytes / HBM\n", p.name,
              bw / 1e12);
  std::printf("%-6s %4s %8s %-18s %8s %10s %8s %10s %7s\n", "set", "mats", "Mparams", "impl", "launches", "time_us",
              "GB/s", "floor_us", "x_floor");
  Shapes all = generator_shapes();
  const Shapes d = discriminator_shapes();
  all.insert(all.end(), d.begin(), d.end());
  int failures = 0;
  for (const auto& [set, shapes] : {std::pair{"G", generator_shapes()}, std::pair{"D", d}, std::pair{"G+D", all}}) {
    try {
      failures += run_set(set, shapes, reps, inner, bw);
    } catch (const std::exception& e) {  // setting up the set's tensors
      std::fprintf(stderr, "bench_spectral_norm: %s: %s\n", set, e.what());
      ++failures;
    }
  }
  return failures > 0 ? 1 : 0;
#endif
}
