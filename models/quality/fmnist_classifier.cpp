#include "sagan/models/quality/fmnist_classifier.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/safetensors.h"
#include "sagan/core/ops.h"
#include "sagan/core/ops_vision.h"

namespace sagan::quality {

// A bias-free conv kernel or a linear layer: just its parameters, named
// "weight" (and "bias") like torch.nn.Conv2d / Linear.
class FmnistClassifier::Dense : public nn::Module {
 public:
  Dense(const Shape& shape, bool bias, Rng& gen) {
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    // He-normal: keeps the activation scale through relu layers.
    Tensor w = Tensor::randn(shape, gen);
    {
      NoGradGuard ng;
      w = mul(w, std::sqrt(2.0 / static_cast<double>(fan_in)));
    }
    register_parameter("weight", w);
    if (bias) register_parameter("bias", Tensor::zeros({shape[0]}));
  }
  Tensor weight() const { return param("weight"); }
  Tensor bias() const { return param("bias"); }

 protected:
  const char* type_name() const override { return "FmnistClassifier.Dense"; }
};

namespace {
constexpr int64_t kWidths[5] = {1, 32, 32, 64, 64};
}

FmnistClassifier::FmnistClassifier(Rng& gen) {
  for (int i = 0; i < 4; ++i) {
    conv_[i] = register_module(fmt::format("conv{}", i + 1),
                               std::make_shared<Dense>(Shape{kWidths[i + 1], kWidths[i], 3, 3}, false, gen));
    bn_[i] = register_module(fmt::format("bn{}", i + 1), std::make_shared<nn::BatchNorm2d>(kWidths[i + 1]));
  }
  fc1_ = register_module("fc1", std::make_shared<Dense>(Shape{kFeatures, 64 * 7 * 7}, true, gen));
  fc2_ = register_module("fc2", std::make_shared<Dense>(Shape{kClasses, kFeatures}, true, gen));
}

FmnistClassifier::Output FmnistClassifier::forward(const Tensor& x, double dropout, Rng* gen) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 1 && x.size(2) == kSide && x.size(3) == kSide,
              "FmnistClassifier: input must be (B, 1, 28, 28), got {}",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  SAGAN_CHECK(dropout >= 0 && dropout < 1, "FmnistClassifier: dropout must be in [0, 1), got {}", dropout);
  Tensor h = x;
  for (int i = 0; i < 4; ++i) {
    h = relu(bn_[i]->forward(conv2d(h, conv_[i]->weight(), std::nullopt, 1, 1)));
    if (i % 2 == 1) h = max_pool2x2(h);
  }
  Output out;
  out.features = relu(linear(h.flatten(1), fc1_->weight(), fc1_->bias()));
  Tensor f = out.features;
  if (is_training() && dropout > 0) {
    SAGAN_CHECK(gen != nullptr, "FmnistClassifier: dropout needs a Rng");
    std::vector<double> mask(static_cast<size_t>(f.numel()));
    for (double& m : mask) m = gen->uniform() < dropout ? 0.0 : 1.0 / (1.0 - dropout);
    f = mul(f, Tensor::from_vector(mask, f.shape(), f.dtype(), f.device()));
  }
  out.logits = linear(f, fc2_->weight(), fc2_->bias());
  return out;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  SAGAN_CHECK(logits.defined() && logits.dim() == 2, "cross_entropy: logits must be (B, K), got {}",
              logits.defined() ? shape_str(logits.shape()) : std::string("undefined"));
  const int64_t B = logits.size(0), K = logits.size(1);
  SAGAN_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == B,
              "cross_entropy: labels must be (B) = ({}) for logits {}, got {}", B, shape_str(logits.shape()),
              labels.defined() ? shape_str(labels.shape()) : std::string("undefined"));
  std::vector<int64_t> y = labels.to_int_vector();
  std::vector<double> onehot(static_cast<size_t>(B * K), 0.0);
  for (int64_t i = 0; i < B; ++i) {
    SAGAN_CHECK(y[static_cast<size_t>(i)] >= 0 && y[static_cast<size_t>(i)] < K,
                "cross_entropy: label {} of example {} is not in [0, {})", y[static_cast<size_t>(i)], i, K);
    onehot[static_cast<size_t>(i * K + y[static_cast<size_t>(i)])] = 1.0;
  }
  Tensor picked = mul(log_softmax(logits, 1), Tensor::from_vector(onehot, {B, K}, logits.dtype(), logits.device()));
  return mul(sum(picked), -1.0 / static_cast<double>(B));
}

std::string default_fmnist_weights() {
  if (const char* env = std::getenv("SAGAN_FMNIST_WEIGHTS"); env && *env) return env;
#ifdef SAGAN_SOURCE_WEIGHTS_DIR
  // An absolute path from CMake (__FILE__ is relative under ccache's base_dir).
  const std::string in_tree = std::string(SAGAN_SOURCE_WEIGHTS_DIR) + "/fmnist_cnn.safetensors";
#else
  const std::string in_tree =
      (std::filesystem::path(__FILE__).parent_path() / "weights" / "fmnist_cnn.safetensors").string();
#endif
  // An installed program reads the copy beside its <prefix>/bin (a prefix
  // moved, or cmake --install --prefix P), so that it never depends on the
  // build machine's source tree. A program of the build tree (its tools,
  // tests, benchmarks) then reads the source tree's file, even with an older
  // copy installed; any other the configured prefix's copy. The source
  // tree's path names the file in errors.
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
#ifdef SAGAN_RELATIVE_DATA_DIR
  if (!exe.empty()) {
    const std::filesystem::path beside =
        exe.parent_path().parent_path() / SAGAN_RELATIVE_DATA_DIR / "fmnist_cnn.safetensors";
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
#endif
#ifdef SAGAN_BUILD_DIR
  if (!exe.empty()) {
    const std::filesystem::path build = std::filesystem::weakly_canonical(SAGAN_BUILD_DIR, ec);
    if (!ec && io::path_within(build, exe)) return in_tree;
  }
#endif
#ifdef SAGAN_INSTALLED_DATA_DIR
  const std::string installed = std::string(SAGAN_INSTALLED_DATA_DIR) + "/fmnist_cnn.safetensors";
  if (std::filesystem::exists(installed, ec)) return installed;
#endif
  return in_tree;
}

FmnistFeatureNet::FmnistFeatureNet(const std::string& weights_path, Device device) : device_(device) {
  // No option named here: the path may come from sagan-eval's --fmnist-weights,
  // sagan-train's --fd-weights or the environment (load_feature_net checks
  // an option's file itself, naming the option).
  const char* env = std::getenv("SAGAN_FMNIST_WEIGHTS");
  const bool from_env = env != nullptr && weights_path == env;
  SAGAN_CHECK(std::filesystem::exists(weights_path),
              "fmnist features: weights file {}{} does not exist (train one with sagan-train-classifier; an "
              "install holds it in <prefix>/share/sagan, find_package(sagan)'s SAGAN_DATA_DIR)",
              weights_path, from_env ? " (from the environment variable SAGAN_FMNIST_WEIGHTS)" : "");
  io::SafetensorsFile f = io::load_safetensors(weights_path);
  Rng init(0);
  model_ = std::make_unique<FmnistClassifier>(init);
  try {
    model_->load_state(std::map<std::string, Tensor>(f.tensors.begin(), f.tensors.end()));
  } catch (const Error& e) {
    SAGAN_FAIL("fmnist features: {}: {}", weights_path, e.what());
  }
  model_->to(device);
  model_->eval();
}

FeatureNet::Output FmnistFeatureNet::embed(const Tensor& images) {
  SAGAN_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
              "fmnist features: images must be (B, 1 or 3, H, W) in [-1, 1], got {}",
              images.defined() ? shape_str(images.shape()) : std::string("undefined"));
  NoGradGuard ng;
  Tensor x = images.detach().to(DType::F32).to(device_);
  if (x.size(1) == 3) {
    // Luma is linear, so applying it to [-1, 1] values equals converting the pixels.
    x = add(add(mul(x.slice(1, 0, 1), 0.299), mul(x.slice(1, 1, 2), 0.587)), mul(x.slice(1, 2, 3), 0.114));
  }
  const int64_t s = FmnistClassifier::kSide;
  if (x.size(2) != s || x.size(3) != s) x = resize_bilinear(x, s, s);
  FmnistClassifier::Output o = model_->forward(x.contiguous());
  return {o.features, o.logits};
}

}  // namespace sagan::quality
