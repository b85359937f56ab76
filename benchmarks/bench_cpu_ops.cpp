// CPU GEMM and conv2d throughput at SAGAN-32's shapes (batch 64), forward
// and backward, float32. benchmarks/torch_cpu_ops.py runs the same list with
// PyTorch and benchmarks/run_cpu_ops.sh puts the two side by side.
//
// Output: one line per (shape, direction):  name<TAB>fwd|bwd<TAB>ms<TAB>GFLOP/s
// with the median time of --repeats runs after --warmup runs (--min: the
// fastest, steadier on a shared machine). Backward is the input and weight
// gradients (plus the bias gradient where there is a bias), i.e. twice the
// forward FLOPs; --split-backward adds a conv's two kernels as rows
// "bwd-x" (input gradient) and "bwd-w" (weight gradient), each with the
// forward's FLOPs.
//
//   bench_cpu_ops [--repeats N] [--warmup N] [--min] [--split-backward] [--filter SUBSTRING]...
// (with --filter given, the rows whose names contain any of them)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/bench_args.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"

using namespace sagan;

namespace {

struct Options {
  int repeats = 5, warmup = 2;
  bool fastest = false, split_backward = false;
  std::vector<std::string> filters;  // empty: every row
  bool wanted(const std::string& name) const {
    if (filters.empty()) return true;
    for (const std::string& f : filters)
      if (name.find(f) != std::string::npos) return true;
    return false;
  }
};

// The median (or with --min the fastest) of o.repeats timed runs.
double time_ms(const std::function<void()>& f, const Options& o) {
  for (int i = 0; i < o.warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < o.repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return o.fastest ? t.front() : t[t.size() / 2];
}

void report(const std::string& name, const char* dir, double ms, double flops) {
  std::printf("%s\t%s\t%.3f\t%.1f\n", name.c_str(), dir, ms, flops / (ms * 1e-3) / 1e9);
  std::fflush(stdout);
}

constexpr int64_t kBatch = 64;

void bench_conv(const Options& o, int64_t ci, int64_t co, int64_t k, int64_t hw) {
  std::string name = fmt::format("conv{}x{} {}->{} @{}", k, k, ci, co, hw);
  if (!o.wanted(name)) return;
  Rng gen(1);
  const int64_t pad = k / 2;
  Tensor x = Tensor::randn({kBatch, ci, hw, hw}, gen), w = Tensor::randn({co, ci, k, k}, gen);
  Tensor b = Tensor::randn({co}, gen);
  const double flops = 2.0 * kBatch * co * ci * k * k * hw * hw;
  NoGradGuard ng;
  report(name, "fwd", time_ms([&] { conv2d(x, w, b, 1, pad); }, o), flops);
  // The backward rule's work: both kernels and the bias sum.
  Tensor gy = Tensor::randn({kBatch, co, hw, hw}, gen);
  Tensor gx = Tensor::empty(x.shape()), gw = Tensor::empty(w.shape());
  Backend& be = backend_for(Device::cpu());
  report(name, "bwd",
         time_ms(
             [&] {
               be.conv2d_backward_input(gy, w, gx, {1, pad});
               be.conv2d_backward_weight(gy, x, gw, {1, pad});
               sum(gy, {0, 2, 3});
             },
             o),
         2 * flops);
  if (o.split_backward) {
    report(name, "bwd-x", time_ms([&] { be.conv2d_backward_input(gy, w, gx, {1, pad}); }, o), flops);
    report(name, "bwd-w", time_ms([&] { be.conv2d_backward_weight(gy, x, gw, {1, pad}); }, o), flops);
  }
}

// y (B,M,N) = a (B,M,K) @ b (B,K,N); backward ga = g b^T, gb = a^T g.
void bench_bmm(const Options& o, int64_t batch, int64_t m, int64_t k, int64_t n) {
  std::string name = fmt::format("bmm ({},{},{})x({},{},{})", batch, m, k, batch, k, n);
  if (!o.wanted(name)) return;
  Rng gen(2);
  Tensor a = Tensor::randn({batch, m, k}, gen), b = Tensor::randn({batch, k, n}, gen);
  Tensor g = Tensor::randn({batch, m, n}, gen);
  const double flops = 2.0 * batch * m * n * k;
  NoGradGuard ng;
  report(name, "fwd", time_ms([&] { bmm(a, b); }, o), flops);
  report(name, "bwd",
         time_ms(
             [&] {
               bmm(g, b.transpose(1, 2));
               bmm(a.transpose(1, 2), g);
             },
             o),
         2 * flops);
}

// y (B,out) = x (B,in) @ w (out,in)^T + bias; backward gx, gw, gb.
void bench_linear(const Options& o, int64_t in, int64_t out) {
  std::string name = fmt::format("linear {}->{} (batch {})", in, out, kBatch);
  if (!o.wanted(name)) return;
  Rng gen(3);
  Tensor x = Tensor::randn({kBatch, in}, gen), w = Tensor::randn({out, in}, gen), b = Tensor::randn({out}, gen);
  Tensor g = Tensor::randn({kBatch, out}, gen);
  const double flops = 2.0 * kBatch * in * out;
  NoGradGuard ng;
  report(name, "fwd", time_ms([&] { linear(x, w, b); }, o), flops);
  report(name, "bwd",
         time_ms(
             [&] {
               matmul(g, w);
               matmul(g.t(), x);
               sum(g, {0});
             },
             o),
         2 * flops);
}

// Every row, in the order the tables list them.
void run_all(const Options& o) {
  std::fprintf(stderr, "bench_cpu_ops: %d OpenMP threads, batch %lld, %s of %d after %d warm-up runs\n",
               omp_get_max_threads(), static_cast<long long>(kBatch), o.fastest ? "fastest" : "median", o.repeats,
               o.warmup);
  // Generator: 256 wide, 3x3 convs after each 2x upsample, 1x1 shortcuts, RGB head.
  for (int64_t hw : {8, 16, 32}) bench_conv(o, 256, 256, 3, hw);
  for (int64_t hw : {8, 16, 32}) bench_conv(o, 256, 256, 1, hw);
  bench_conv(o, 256, 3, 3, 32);
  // The gray head (Fashion-MNIST), and 12 outputs: the direct path's widest
  // measured use (kernels/cpu/conv3x3_algo.h).
  bench_conv(o, 256, 1, 3, 32);
  bench_conv(o, 256, 12, 3, 32);
  // Discriminator: 128 wide.
  bench_conv(o, 3, 128, 3, 32);
  for (int64_t hw : {32, 16, 8}) bench_conv(o, 128, 128, 3, hw);
  bench_conv(o, 3, 128, 1, 16);
  bench_conv(o, 128, 128, 1, 16);
  // Self-attention at 16x16: theta/phi, g, and the output conv.
  bench_conv(o, 256, 32, 1, 16);
  bench_conv(o, 256, 128, 1, 16);
  bench_conv(o, 128, 256, 1, 16);
  // The cpu preset's width (ch 16): G 64 wide, D 32 wide.
  for (int64_t hw : {8, 16, 32}) bench_conv(o, 64, 64, 3, hw);
  for (int64_t hw : {32, 16, 8}) bench_conv(o, 32, 32, 3, hw);
  bench_bmm(o, 64, 256, 32, 64);
  bench_bmm(o, 64, 256, 64, 128);
  bench_linear(o, 128, 4096);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc)
      o.repeats = static_cast<int>(sagan::bench::int_arg("bench_cpu_ops", a, argv[++i], 1, 1000000));
    else if (a == "--warmup" && i + 1 < argc)
      o.warmup = static_cast<int>(sagan::bench::int_arg("bench_cpu_ops", a, argv[++i], 0, 1000000));
    else if (a == "--min")
      o.fastest = true;
    else if (a == "--split-backward")
      o.split_backward = true;
    else if (a == "--filter" && i + 1 < argc)
      o.filters.push_back(argv[++i]);
    else {
      const bool help = a == "--help" || a == "-h";
      const bool needs_value = a == "--repeats" || a == "--warmup" || a == "--filter";
      const char* what = needs_value ? "needs a value" : "is not an argument";
      if (!help) std::fprintf(stderr, "bench_cpu_ops: %s %s\n", a.c_str(), what);
      std::fprintf(help ? stdout : stderr,
                   "usage: %s [--repeats N] [--warmup N] [--min] [--split-backward] [--filter SUBSTRING]...\n",
                   argv[0]);
      return help ? 0 : 2;
    }
  }
  try {
    run_all(o);
  } catch (const std::exception& e) {  // a bad SAGAN_CONV3X3, say: a message, not an abort
    std::fprintf(stderr, "bench_cpu_ops: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
