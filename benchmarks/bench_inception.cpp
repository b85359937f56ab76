// The FID Inception-v3 forward (models/quality/inception.h) at the size FID
// evaluation feeds it: CIFAR-sized images (B, 3, 32, 32) resized to 299x299,
// through to the pool3 features and logits, no gradients, float32. Weights
// are seeded random values of the right shapes (time does not depend on
// them). benchmarks/torch_inception.py times pytorch-fid's network the same
// way; benchmarks/run_inception.sh runs both.
//
//   bench_inception [--device cpu|cuda] [--batch N] [--size S] [--repeats N] [--warmup N] [--profile]
//
// --profile: the kernel profile of the timed batches on stderr, per batch
// (core/kernel_profile.h; on CUDA every kernel synchronised, so the row's
// time is not the overlapped one: its name gets "-profiled").
//
// Output: one line, inception-sagan<TAB>device<TAB>batch<TAB>median ms per
// batch<TAB>images/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "benchmarks/bench_args.h"
#include "sagan/core/backend.h"
#include "sagan/core/kernel_profile.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "sagan/models/quality/inception.h"

using namespace sagan;

int main(int argc, char** argv) {
  std::string device = "cpu";
  int64_t batch = 16, size = 32;
  int repeats = 5, warmup = 1;
  bool profiled = false;
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_inception: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--device"))
      device = value("--device");
    else if (!std::strcmp(argv[i], "--batch"))
      batch = sagan::bench::int_arg("bench_inception", "--batch", value("--batch"), 1);
    else if (!std::strcmp(argv[i], "--size"))
      size = sagan::bench::int_arg("bench_inception", "--size", value("--size"), 1, 4096);
    else if (!std::strcmp(argv[i], "--repeats"))
      repeats = static_cast<int>(sagan::bench::int_arg("bench_inception", "--repeats", value("--repeats"), 1, 1000000));
    else if (!std::strcmp(argv[i], "--warmup"))
      warmup = static_cast<int>(sagan::bench::int_arg("bench_inception", "--warmup", value("--warmup"), 0, 1000000));
    else if (!std::strcmp(argv[i], "--profile"))
      profiled = true;
    else {
      const bool help = !std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h");
      std::fprintf(help ? stdout : stderr,
                   "usage: bench_inception [--device cpu|cuda] [--batch N] [--size S] [--repeats N] [--warmup N] "
                   "[--profile]\n");
      return help ? 0 : 2;
    }
  }
  if (batch < 1 || size < 1 || repeats < 1 || warmup < 0) {
    std::fprintf(stderr, "bench_inception: --batch, --size and --repeats must be positive, --warmup >= 0\n");
    return 2;
  }
  try {
    const Device dev = Device::parse(device);
    if (dev.is_cuda() && cuda_device_count() <= dev.index) {
      std::fprintf(stderr,
                   "bench_inception: --device %s: %d CUDA device(s) present (or this build has no CUDA backend)\n",
                   device.c_str(), cuda_device_count());
      return 1;
    }
    Rng gen(5);
    std::map<std::string, Tensor> weights;
    int64_t parameters = 0;
    for (const auto& [name, shape] : quality::FidInception::expected_tensors()) {
      parameters += numel_of(shape);
      // Batch-norm variances positive, everything else small and centred.
      Tensor t = mul(Tensor::randn(shape, gen, DType::F64), 0.05);
      if (name.find("running_var") != std::string::npos) t = add(abs(t), 1.0);
      weights.emplace(name, t);
    }
    std::fprintf(stderr, "bench_inception: %zu tensors, %lld values (pytorch-fid's state dict)\n", weights.size(),
                 static_cast<long long>(parameters));
    quality::FidInception net(weights, "random weights", DType::F32, dev);
    const Tensor images = tanh(Tensor::randn({batch, 3, size, size}, gen)).to(dev);
    std::vector<double> ms;
    for (int r = 0; r < warmup + repeats; ++r) {
      if (profiled && r == warmup) {
        profile::set_enabled(true);
        profile::reset();
      }
      const auto t0 = std::chrono::steady_clock::now();
      const auto out = net.embed(images);
      (void)out.features.to_vector();  // waits for the device
      const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r >= warmup) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    if (profiled) {
      profile::set_enabled(false);
      std::fprintf(stderr, "%s", profile::report(repeats, "batch").c_str());
    }
    std::printf("inception-sagan%s\t%s\t%lld\t%.1f\t%.2f\n", profiled ? "-profiled" : "", device_name(dev).c_str(),
                static_cast<long long>(batch), med, 1000.0 * static_cast<double>(batch) / med);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_inception: %s\n", e.what());
    return 1;
  }
}
