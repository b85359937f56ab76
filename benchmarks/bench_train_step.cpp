// One whole SAGAN training iteration with the engine's Trainer (models/trainer.h):
// n_dis = 1 D step on [real; fake] as one batch, one G step with D frozen,
// the EMA update; Adam betas (0, 0.9), TTUR learning rates. Data are
// synthetic (random images held in memory, fed through the real DataLoader)
// so that disk and decoding are out of the picture.
// benchmarks/torch_train_step.py runs the same iteration with the PyTorch
// reference model; benchmarks/run_train_step.sh runs both and prints the ratio.
//
// Output: one line per configuration,
//   name<TAB>impl<TAB>device<TAB>median s/iter<TAB>min s/iter<TAB>peak MiB
// with the median and minimum over --repeats iterations after --warmup ones
// (defaults: 5 after 2 on the CPU, 20 after 5 on CUDA).
// Peak is the process's peak resident set on the CPU (data set and code
// included) and the caching allocator's peak bytes in use on CUDA.
//
//   bench_train_step [--device auto|cpu|cuda] [--resolution R] [--ch C] [--batch B]
//                    [--classes K] [--repeats N] [--warmup N] [--cuda-graph] [--precision P]
//                    [--no-deterministic] [--profile]
// --cuda-graph: the iterations replayed as CUDA graphs (impl sagan-graph;
// the first one runs plain, the second captures: both are warm-up).
// --precision fp32|tf32|bf16: the trainer's --precision (default fp32); a
// precision other than fp32 is appended to impl (sagan@bf16), as
// torch_train_step.py does with its own --precision.
// --no-deterministic: the trainer's --no-deterministic (CUDA: the atomic
// attention backward, cuDNN's fastest algorithm by timing; impl gets
// "-nondet"), PyTorch's own default; the engine's default is deterministic.
// --profile: the kernel profile of the timed iterations (core/kernel_profile.h)
// on stderr, per iteration: each kernel's time, FLOPs and bytes, and the
// time outside kernels. On CUDA it synchronises around every kernel, so the
// row's times are not the overlapped step's: impl gets "-profiled".
// Without --resolution: SAGAN-32 on the CPU, SAGAN-32 and SAGAN-128 on CUDA.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/bench_args.h"
#include "sagan/core/backend.h"
#include "sagan/core/kernel_profile.h"
#include "sagan/core/matmul_precision.h"
#include "sagan/core/rng.h"
#include "sagan/models/trainer.h"

#ifdef SAGAN_WITH_CUDA
#include "sagan/kernels/cuda/device_info.h"
#endif

using namespace sagan;

namespace {

struct Options {
  std::string device = "auto";
  std::vector<int64_t> resolutions;  // empty: the device's default list
  int64_t ch = 64, batch = 64, classes = 10;
  int repeats = 0, warmup = -1;  // unset: 5 and 2 on the CPU, 20 and 5 on CUDA
  bool cuda_graph = false;
  bool deterministic = true;
  bool profile = false;
  std::string precision = "fp32";
};

constexpr const char* kUsage =
    "usage: bench_train_step [--device auto|cpu|cuda] [--resolution R] [--ch C] [--batch B] [--classes K] "
    "[--repeats N] [--warmup N] [--cuda-graph] [--precision fp32|tf32|bf16] [--no-deterministic] [--profile]\n";

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "bench_train_step: %s\n%s", why, kUsage);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    auto integer = [&](int64_t lo, int64_t hi) {
      return static_cast<int64_t>(sagan::bench::int_arg("bench_train_step", a, value(), lo, hi));
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--cuda-graph")
      o.cuda_graph = true;
    else if (a == "--no-deterministic")
      o.deterministic = false;
    else if (a == "--profile")
      o.profile = true;
    else if (a == "--device")
      o.device = value();
    else if (a == "--precision") {
      o.precision = value();
      try {
        parse_matmul_precision(o.precision, "--precision");  // the trainer's own check, before any work
      } catch (const Error& e) {
        usage(e.what());
      }
    } else if (a == "--resolution")
      o.resolutions.push_back(integer(32, 1024));
    else if (a == "--ch")
      o.ch = integer(1, 4096);
    else if (a == "--batch")
      o.batch = integer(1, 1 << 20);
    else if (a == "--classes")
      o.classes = integer(0, 1 << 20);
    else if (a == "--repeats")
      o.repeats = static_cast<int>(integer(1, 1000000));
    else if (a == "--warmup")
      o.warmup = static_cast<int>(integer(0, 1000000));
    else
      usage(("unknown argument " + a).c_str());
  }
  return o;
}

// Random images of one fixed size: get() is a copy, like an in-memory data set.
class SyntheticImages : public data::Dataset {
 public:
  SyntheticImages(int64_t n, int64_t res, int64_t channels, int64_t classes)
      : n_(n), res_(res), c_(channels), k_(classes) {
    Rng gen(7);
    images_.resize(static_cast<size_t>(n));
    labels_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      io::Image img(res, res, channels);
      for (uint8_t& p : img.pixels) p = static_cast<uint8_t>(gen.below(256));
      images_[static_cast<size_t>(i)] = std::move(img);
      labels_[static_cast<size_t>(i)] =
          classes > 0 ? static_cast<int64_t>(gen.below(static_cast<uint64_t>(classes))) : 0;
    }
  }
  std::string name() const override { return "synthetic"; }
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return std::max<int64_t>(k_, 1); }
  int64_t channels() const override { return c_; }
  int64_t height() const override { return res_; }
  int64_t width() const override { return res_; }
  data::Example get(int64_t i) const override {
    check_index(i);
    return {images_[static_cast<size_t>(i)], labels_[static_cast<size_t>(i)]};
  }

 private:
  int64_t n_, res_, c_, k_;
  std::vector<io::Image> images_;
  std::vector<int64_t> labels_;
};

double peak_mib(const Device& dev) {
#ifdef SAGAN_WITH_CUDA
  if (dev.is_cuda()) return static_cast<double>(cuda_memory_stats(dev.index).peak_bytes_in_use) / (1 << 20);
#endif
  (void)dev;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void bench_resolution(const Options& o, int64_t res) {
  TrainConfig cfg;
  cfg.model.resolution = res;
  cfg.model.ch = o.ch;
  cfg.unconditional = o.classes == 0;
  cfg.batch_size = o.batch;
  cfg.device = o.device;
  cfg.ema_start = 0;  // the EMA formula from the first step, as the PyTorch twin does
  cfg.cuda_graph = o.cuda_graph;
  cfg.deterministic = o.deterministic;
  cfg.precision = o.precision;
  auto ds = std::make_shared<SyntheticImages>(4 * o.batch, res, 3, o.classes);
  Trainer trainer(cfg, ds);
  Backend& be = backend_for(trainer.device());

  std::vector<double> secs;
  for (int i = 0; i < o.warmup + o.repeats; ++i) {
    if (o.profile && i == o.warmup) {
      profile::set_enabled(true);
      profile::reset();
    }
    be.synchronize();
    auto t0 = std::chrono::steady_clock::now();
    StepStats st = trainer.step();
    be.synchronize();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(st.loss_d) || !std::isfinite(st.loss_g))
      std::fprintf(stderr, "bench_train_step: non-finite loss at iteration %d (D %g, G %g)\n", i, st.loss_d, st.loss_g);
    if (i >= o.warmup) secs.push_back(s);
  }
  std::sort(secs.begin(), secs.end());
  std::string name = fmt::format("SAGAN-{} ch{} b{}", res, o.ch, o.batch);
  if (o.profile) {
    profile::set_enabled(false);
    std::fprintf(stderr, "%s, %s:%s", name.c_str(), device_name(trainer.device()).c_str(),
                 profile::report(o.repeats, "iteration").c_str());
  }
  const std::string impl = std::string(o.cuda_graph ? "sagan-graph" : "sagan") + (o.deterministic ? "" : "-nondet") +
                           (o.profile ? "-profiled" : "") + (o.precision == "fp32" ? "" : "@" + o.precision);
  std::printf("%s\t%s\t%s\t%.4f\t%.4f\t%.0f\n", name.c_str(), impl.c_str(), device_name(trainer.device()).c_str(),
              secs[secs.size() / 2], secs.front(), peak_mib(trainer.device()));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    Device dev = resolve_device(o.device);
    if (o.repeats == 0) o.repeats = dev.is_cuda() ? 20 : 5;
    if (o.warmup < 0) o.warmup = dev.is_cuda() ? 5 : 2;
    if (o.profile && o.cuda_graph) usage("--profile times kernel calls, which a --cuda-graph replay does not make");
    if (o.cuda_graph && o.warmup < 2) usage("--cuda-graph needs --warmup 2 or more (a plain step, then the capture)");
    if (o.resolutions.empty()) o.resolutions = dev.is_cuda() ? std::vector<int64_t>{32, 128} : std::vector<int64_t>{32};
    for (int64_t r : o.resolutions) bench_resolution(o, r);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
