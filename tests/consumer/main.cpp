// A program outside the source tree, built against an installed sagan: a
// 2-layer MLP regressing y = tanh(2 x0) + x1 x2, trained with the engine's
// autograd and Adam. Prints its loss; exits 0 when the loss has fallen to
// under half its first value, 1 otherwise. Also loads the installed
// Fashion-MNIST feature network from SAGAN_DATA_DIR, and trains a tiny SAGAN
// on a data set of its own (own_data.cpp). With --weights-path, prints only
// where the engine looks for those weights by itself (check_install.cmake
// runs a copy in <prefix>/bin, which must find <prefix>/share/sagan's).
#include <cstdio>
#include <exception>
#include <string>

#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "sagan/layers/adam.h"
#include "sagan/models/quality/fmnist_classifier.h"

// A file-scope tensor: made by this file's static initialiser, which may run
// before the engine's backend registers itself (core/backend.cpp).
const sagan::Tensor kGlobalOnes = sagan::Tensor::ones({4});

std::string train_on_own_data();  // own_data.cpp

int main(int argc, char** argv) try {
  using namespace sagan;
  if (argc == 2 && std::string(argv[1]) == "--weights-path") {
    std::printf("%s\n", quality::default_fmnist_weights().c_str());
    return 0;
  }
  if (sum(kGlobalOnes).item() != 4.0) {
    std::printf("file-scope tensor: wrong value\n");
    return 1;
  }
  Rng gen(7);
  const int64_t batch = 128, in = 3, hidden = 32, steps = 150;

  // x (B,3) uniform in [-1, 1); y (B,1).
  Tensor x = add(mul(Tensor::rand({batch, in}, gen), 2.0), -1.0);
  Tensor y = add(tanh(mul(x.select(1, 0), 2.0)), mul(x.select(1, 1), x.select(1, 2))).unsqueeze(1);

  // Parameters: w1 (32,3), b1 (32), w2 (1,32), b2 (1).
  auto param = [&](const Shape& s, double scale) {
    Tensor t = mul(Tensor::randn(s, gen), scale);
    t.set_requires_grad(true);
    return t;
  };
  Tensor w1 = param({hidden, in}, 0.5), b1 = param({hidden}, 0.0);
  Tensor w2 = param({1, hidden}, 0.2), b2 = param({1}, 0.0);
  AdamOptions opt;
  opt.lr = 1e-2;
  opt.beta1 = 0.9;
  opt.beta2 = 0.999;
  nn::Adam adam({{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}}, opt);

  double first = 0, last = 0;
  for (int64_t step = 0; step < steps; ++step) {
    Tensor h = relu(linear(x, w1, b1));  // (B,32)
    Tensor pred = linear(h, w2, b2);     // (B,1)
    Tensor loss = mean(square(sub(pred, y)));
    adam.zero_grad();
    loss.backward();
    adam.step();
    last = loss.item();
    if (step == 0) first = last;
    if (step % 25 == 0 || step + 1 == steps) std::printf("step %3lld  loss %.6f\n", static_cast<long long>(step), last);
  }
  // The package's data, found through find_package's SAGAN_DATA_DIR.
  quality::FmnistFeatureNet net(SAGAN_CONSUMER_DATA_DIR "/fmnist_cnn.safetensors");
  if (net.embed(Tensor::zeros({2, 1, 28, 28})).features.shape() != Shape{2, 128}) {
    std::printf("fmnist features: wrong shape\n");
    return 1;
  }
  if (const std::string problem = train_on_own_data(); !problem.empty()) {
    std::printf("a run on the program's own data set: %s\n", problem.c_str());
    return 1;
  }
  const bool learned = last < 0.5 * first;
  std::printf("%s: loss %.6f -> %.6f\n", learned ? "ok" : "FAILED", first, last);
  return learned ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer: %s\n", e.what());
  return 1;
}
