// Attention on the GPU at SAGAN's attention shapes: the fused kernels
// (kernels/cuda/flash_attention.h, called directly on engine tensors: the
// three forward versions) and the engine's op front end sagan::attention
// (autograd included for forward+backward) through each CUDA path, chosen
// with set_cuda_attention_impl (rows engine:fused, the default, and
// engine:unfused), and the tensor-core kernels (kernels/cuda/
// flash_attention_tc.h) in each precision, called directly (tc-fp32,
// tc-tf32, tc-bf16) and through the op (engine:tc-*). Forward and
// forward+backward, batch 64 and 256.
//
// Per row: median time; achieved GB/s and TFLOP/s over the floors' bytes and
// FLOPs; the two floors (bytes / HBM bandwidth, FLOPs / the peak of the
// row's arithmetic: fp32 for the plain kernels, dense TF32 / 3 for tc-fp32
// (three TF32 products per product), dense TF32 for tc-tf32, dense BF16 for
// tc-bf16; datasheet rates, benchmarks/cuda_bench.h) and time / floor; peak device memory of that configuration alone
// (each row runs in a child process of this program so that the allocator's peak is its own).
//   FLOPs forward  = 2 B N S (d + dv)          (Q K^T, then P V)
//   FLOPs backward = 2 B N S (3 d + 2 dv)      (Q K^T again, dV, dP, dQ, dK)
//   bytes forward  = 4 B (N d + S d + S dv + N dv + N)   (read q k v, write out lse)
//   bytes backward = 4 B (N d + S d + S dv + 2 N dv + N + N d + S d + S dv)
// Usage: bench_attention [--reps R] [--batches 64,256] [--only I] [--list]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "benchmarks/bench_args.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"

#ifdef SAGAN_WITH_CUDA
#include <cuda_runtime.h>
#include <sys/wait.h>

#include "benchmarks/cuda_bench.h"
#include "sagan/kernels/cuda/device_info.h"
#include "sagan/kernels/cuda/flash_attention.h"
#include "sagan/kernels/cuda/flash_attention_tc.h"
#include "sagan/kernels/cuda/settings.h"
#endif

namespace {

struct Config {
  const char* model;
  const char* net;
  int B, N, S, d, dv;
};

// Attention shapes (see docs/benchmarks.md): C channels at H x W give
// N = H W queries, S = N / 4 keys (2x2 max-pooled), d = C / 8, dv = C / 2.
std::vector<Config> configs(const std::vector<int>& batches) {
  const Config base[] = {
      {"SAGAN-32", "G", 0, 256, 64, 32, 128},     // 16x16, C = 256
      {"SAGAN-32", "D", 0, 256, 64, 16, 64},      // 16x16, C = 128
      {"SAGAN-64", "G", 0, 1024, 256, 16, 64},    // 32x32, C = 2ch = 128
      {"SAGAN-64", "D", 0, 1024, 256, 8, 32},     // 32x32, C = ch = 64
      {"SAGAN-128", "G", 0, 4096, 1024, 16, 64},  // 64x64, C = 2ch = 128
      {"SAGAN-128", "D", 0, 4096, 1024, 8, 32},   // 64x64, C = ch = 64
  };
  std::vector<Config> out;
  for (int b : batches)
    for (Config c : base) {
      c.B = b;
      out.push_back(c);
    }
  return out;
}

// fused-tiled: the mainline kernels; fused-rowwarp / fused-async: the
// row-per-warp (baseline) and cp.async double-buffered (candidate) forward
// versions with the same backward; engine:*: sagan::attention with
// set_cuda_attention_impl(AttentionImpl::Unfused / Fused) (the engine's fused
// path runs the fused-tiled kernels).
// tc-*: the tensor-core kernels in each precision; engine:tc-*: the op
// through set_cuda_attention_impl(AttentionImpl::Tc*). The fused kernels run
// their deterministic backward (the default, kernels/cuda/settings.h) except
// in fused-atomic: fused-tiled with dQ summed by float atomics, which prices
// deterministic mode.
[[maybe_unused]] const char* kImpls[] = {"fused-tiled",    "fused-rowwarp",  "fused-async",    "engine:unfused",
                                         "engine:fused",   "tc-fp32",        "tc-tf32",        "tc-bf16",
                                         "engine:tc-fp32", "engine:tc-tf32", "engine:tc-bf16", "fused-atomic"};
constexpr int kNumImpls = 12;
constexpr int kChildTimeoutS = 60;

// The tensor-core precision of an implementation index (-1: none).
[[maybe_unused]] int tc_precision_of(int impl) { return impl >= 5 && impl <= 10 ? (impl - 5) % 3 : -1; }

double flops(const Config& c, bool bwd) {
  const double bns = 2.0 * c.B * double(c.N) * c.S;
  return bns * (c.d + c.dv) + (bwd ? bns * (3.0 * c.d + 2.0 * c.dv) : 0.0);
}

double bytes(const Config& c, bool bwd) {
  const double B = c.B, N = c.N, S = c.S, d = c.d, dv = c.dv;
  const double fwd = 4 * B * (N * d + S * d + S * dv + N * dv + N);
  const double back = 4 * B * (N * d + S * d + S * dv + 2 * N * dv + N + N * d + S * d + S * dv);
  return fwd + (bwd ? back : 0.0);
}

#ifdef SAGAN_WITH_CUDA

using sagan::bench::device_rates;
using sagan::bench::DeviceRates;
using sagan::bench::time_it;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_attention: %s failed: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// One configuration and implementation, both passes; prints one line per
// pass: "fwd|fwdbwd seconds peak_bytes".
int run_one(const Config& c, int impl, int reps) {
  using namespace sagan;
  const AttentionImpl engine_impls[] = {AttentionImpl::TcF32, AttentionImpl::TcTf32, AttentionImpl::TcBf16};
  if (impl == 3) set_cuda_attention_impl(AttentionImpl::Unfused);
  if (impl == 4) set_cuda_attention_impl(AttentionImpl::Fused);
  if (impl >= 8 && impl <= 10) set_cuda_attention_impl(engine_impls[impl - 8]);
  const bool direct = impl <= 2 || (impl >= 5 && impl <= 7) || impl == 11;
  const auto tc_prec = static_cast<fused::TcPrecision>(tc_precision_of(impl));
  const Device dev = Device::cuda();
  Rng gen(1);
  Tensor q = Tensor::randn({c.B, c.N, c.d}, gen, DType::F32, dev);
  Tensor k = Tensor::randn({c.B, c.S, c.d}, gen, DType::F32, dev);
  Tensor v = Tensor::randn({c.B, c.S, c.dv}, gen, DType::F32, dev);
  Tensor g = Tensor::randn({c.B, c.N, c.dv}, gen, DType::F32, dev);
  const int inner = c.N >= 4096 ? 2 : 10;
  double t_fwd = 0, t_all = 0, peak_fwd = 0;  // peak: the process's, up to the end of that pass's timing
  if (direct) {
    const auto variant = impl == 1   ? fused::FlashForwardVariant::RowWarp
                         : impl == 2 ? fused::FlashForwardVariant::TiledAsync
                                     : fused::FlashForwardVariant::Tiled;
    Tensor out = Tensor::empty({c.B, c.N, c.dv}, DType::F32, dev);
    Tensor lse = Tensor::empty({c.B, c.N}, DType::F32, dev);
    Tensor gq = Tensor::empty({c.B, c.N, c.d}, DType::F32, dev);
    Tensor gk = Tensor::empty({c.B, c.S, c.d}, DType::F32, dev);
    Tensor gv = Tensor::empty({c.B, c.S, c.dv}, DType::F32, dev);
    const bool tc = impl >= 5 && impl <= 7;
    const size_t wsb = tc ? fused::flash_attention_tc_backward_workspace_bytes(c.B, c.N, c.S, c.d, c.dv)
                          : fused::flash_attention_backward_workspace_bytes(c.B, c.N, c.S, c.d, c.dv);
    Tensor ws = Tensor::empty({int64_t(wsb / 4 + 4)}, DType::F32, dev);
    backend_for(dev).synchronize();
    auto fwd = [&] {
      if (tc)
        check(fused::flash_attention_tc_forward(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(),
                                                lse.data<float>(), c.B, c.N, c.S, c.d, c.dv, tc_prec, nullptr),
              "flash_attention_tc_forward");
      else
        check(fused::flash_attention_forward_f32(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(),
                                                 lse.data<float>(), c.B, c.N, c.S, c.d, c.dv, nullptr, variant),
              "flash_attention_forward_f32");
    };
    auto bwd = [&] {
      if (tc)
        check(fused::flash_attention_tc_backward(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(),
                                                 lse.data<float>(), g.data<float>(), gq.data<float>(), gk.data<float>(),
                                                 gv.data<float>(), c.B, c.N, c.S, c.d, c.dv, tc_prec, ws.data<float>(),
                                                 wsb, nullptr),
              "flash_attention_tc_backward");
      else
        check(fused::flash_attention_backward_f32(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(),
                                                  lse.data<float>(), g.data<float>(), gq.data<float>(),
                                                  gk.data<float>(), gv.data<float>(), c.B, c.N, c.S, c.d, c.dv,
                                                  ws.data<float>(), wsb, nullptr, /*deterministic=*/impl != 11),
              "flash_attention_backward_f32");
    };
    t_fwd = time_it(fwd, reps, inner);
    peak_fwd = double(cuda_memory_stats(0).peak_bytes_in_use);
    t_all = time_it(
        [&] {
          fwd();
          bwd();
        },
        reps, inner);
  } else {
    t_fwd = time_it(
        [&] {
          NoGradGuard ng;
          (void)attention(q, k, v).out;
        },
        reps, inner);
    peak_fwd = double(cuda_memory_stats(0).peak_bytes_in_use);
    Tensor qg = q.detach().set_requires_grad(true), kg = k.detach().set_requires_grad(true),
           vg = v.detach().set_requires_grad(true);
    t_all = time_it(
        [&] {
          Tensor out = attention(qg, kg, vg).out;
          out.backward(g);
          qg.set_grad(Tensor()), kg.set_grad(Tensor()), vg.set_grad(Tensor());
        },
        reps, inner);
  }
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const double peak_all = double(cuda_memory_stats(0).peak_bytes_in_use);
  std::printf("fwd %.9g %.0f\nfwdbwd %.9g %.0f\n", t_fwd, peak_fwd, t_all, peak_all);
  return 0;
}

#endif  // SAGAN_WITH_CUDA

}  // namespace

int main(int argc, char** argv) {
  int reps = 7, only = -1;
  std::vector<int> batches{64, 256};
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc)
      reps = static_cast<int>(sagan::bench::int_arg("bench_attention", a, argv[++i], 1, 1000000));
    else if (a == "--batches" && i + 1 < argc)
      batches = sagan::bench::int_list_arg("bench_attention", a, argv[++i], 1, 65536);
    else if (a == "--only" && i + 1 < argc)
      only = static_cast<int>(sagan::bench::int_arg("bench_attention", a, argv[++i], 0, 1000000));
    else if (a == "--list")
      list = true;
    else {
      const bool help = a == "--help" || a == "-h";
      std::fprintf(help ? stdout : stderr,
                   "usage: bench_attention [--reps R] [--batches 64,256] [--only I] [--list]\n");
      return help ? 0 : 2;
    }
  }
  const std::vector<Config> cfgs = configs(batches);
  if (list) {
    for (size_t i = 0; i < cfgs.size(); ++i) {
      const Config& c = cfgs[i];
      std::printf("%zu %s %s B=%d N=%d S=%d d=%d dv=%d fwd_gflop=%.2f fwdbwd_gflop=%.2f fwd_mb=%.1f fwdbwd_mb=%.1f\n",
                  i, c.model, c.net, c.B, c.N, c.S, c.d, c.dv, flops(c, false) / 1e9, flops(c, true) / 1e9,
                  bytes(c, false) / 1e6, bytes(c, true) / 1e6);
    }
    return 0;
  }
#ifndef SAGAN_WITH_CUDA
  (void)reps;
  (void)only;
  std::printf("bench_attention: built without CUDA; nothing to measure (--list prints the shapes and floors)\n");
  return 0;
#else
  if (!sagan::cuda_available()) {
    std::printf("bench_attention: no CUDA device present; nothing to measure (--list prints the shapes and floors)\n");
    return 0;
  }
  if (only >= 0) {
    const int cfg = only / kNumImpls, impl = only % kNumImpls;
    if (cfg >= int(cfgs.size())) return 2;
    try {
      return run_one(cfgs[cfg], impl, reps);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_attention: %s: %s\n", kImpls[impl], e.what());
      return 1;
    }
  }
  const DeviceRates dr = device_rates();
  std::printf(
      "device: %s, HBM %.2f TB/s (datasheet), fp32 %.1f TFLOP/s (SMs x 128 x 2 x clock), dense tf32 %.1f, bf16 %.1f "
      "TFLOP/s (datasheet; 0 = unknown part)\n",
      dr.name.c_str(), dr.bw / 1e12, dr.fp32 / 1e12, dr.tf32 / 1e12, dr.bf16 / 1e12);
  // The arithmetic peak each implementation's floor uses.
  auto peak_of = [&](int impl) {
    switch (tc_precision_of(impl)) {
      case 0:
        return dr.tf32 / 3;
      case 1:
        return dr.tf32;
      case 2:
        return dr.bf16;
      default:
        return dr.fp32;
    }
  };
  std::printf("%-10s %-2s %4s %5s %5s %3s %4s %-15s %-6s %10s %8s %8s %10s %10s %7s %7s %9s\n", "model", "n", "B", "N",
              "S", "d", "dv", "impl", "pass", "time_ms", "GB/s", "TFLOP/s", "floor_mem", "floor_flop", "x_mem",
              "x_flop", "peak_MiB");
  // Largest shapes first (SAGAN-128 tells the most, and a step limit cuts
  // from the end); each child under `timeout`, so that a hung kernel costs
  // its row, not the rest. --foreground keeps the child in this process's
  // group: a caller that times this program out kills its child with it,
  // rather than leave the row running on the GPU under the next program.
  const size_t per_batch = cfgs.size() / batches.size();
  int failed = 0;
  for (size_t bi = 0; bi < batches.size(); ++bi)
    for (size_t k = per_batch; k-- > 0;) {
      const size_t ci = bi * per_batch + k;
      const Config& c = cfgs[ci];
      for (int impl = 0; impl < kNumImpls; ++impl) {
        const std::string cmd = std::string("timeout --foreground -k 5 ") + std::to_string(kChildTimeoutS) + " " + argv[0] + " --reps " +
                                std::to_string(reps) + " --batches " + std::to_string(c.B) + " --only " +
                                std::to_string(k * kNumImpls + impl);
        FILE* pipe = popen(cmd.c_str(), "r");
        if (!pipe) return 1;
        char pass[16];
        double t = 0, peak = 0;
        int lines = 0;
        while (std::fscanf(pipe, "%15s %lf %lf", pass, &t, &peak) == 3) {
          const bool bwd = std::strcmp(pass, "fwdbwd") == 0;
          const double arith = peak_of(impl) > 0 ? peak_of(impl) : dr.fp32;
          const double fm = bytes(c, bwd) / dr.bw, ff = flops(c, bwd) / arith;
          std::printf("%-10s %-2s %4d %5d %5d %3d %4d %-15s %-6s %10.3f %8.0f %8.2f %10.3f %10.3f %7.1f %7.1f %9.0f\n",
                      c.model, c.net, c.B, c.N, c.S, c.d, c.dv, kImpls[impl], pass, t * 1e3, bytes(c, bwd) / t / 1e9,
                      flops(c, bwd) / t / 1e12, fm * 1e3, ff * 1e3, t / fm, t / ff, peak / (1 << 20));
          ++lines;
        }
        const int status = pclose(pipe);
        const int rc = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (lines == 0 || rc != 0) {
          std::printf("%-10s %-2s %4d %5d %5d %3d %4d %-15s failed (exit %d%s)\n", c.model, c.net, c.B, c.N, c.S, c.d,
                      c.dv, kImpls[impl], rc, rc == 124 ? ": timed out" : "");
          ++failed;
        }
        std::fflush(stdout);
      }
    }
  if (failed > 0) std::fprintf(stderr, "bench_attention: %d rows failed\n", failed);
  return failed > 0 ? 1 : 0;
#endif
}
