// A small Fashion-MNIST classifier trained by the engine itself
// (tools/sagan-train-classifier), whose penultimate features give an offline
// Frechet distance for Fashion-MNIST generators when Inception weights are not
// available. It is NOT comparable to Inception FID: different features,
// different scale (docs/evaluation.md).
//
//   x (B, 1, 28, 28) in [-1, 1]
//   conv1 3x3 1->32, BN, relu; conv2 3x3 32->32, BN, relu; 2x2 max pool   (14x14)
//   conv3 3x3 32->64, BN, relu; conv4 3x3 64->64, BN, relu; 2x2 max pool  (7x7)
//   fc1 3136 -> 128, relu      <- the 128-d features
//   (dropout in training) fc2 128 -> 10 logits
#pragma once
#include <memory>
#include <string>

#include "sagan/core/rng.h"
#include "sagan/layers/batch_norm.h"
#include "sagan/layers/module.h"
#include "sagan/models/quality/feature_net.h"

namespace sagan::quality {

class FmnistClassifier : public nn::Module {
 public:
  static constexpr int64_t kSide = 28;
  static constexpr int64_t kFeatures = 128;
  static constexpr int64_t kClasses = 10;

  // He-normal conv / linear weights from gen; BN starts at identity.
  explicit FmnistClassifier(Rng& gen);

  struct Output {
    Tensor features;  // (B, 128)
    Tensor logits;    // (B, 10)
  };
  // x (B, 1, 28, 28). In training mode BN uses batch statistics and, when
  // dropout > 0, features are dropped with that probability using `gen`.
  Output forward(const Tensor& x, double dropout = 0.0, Rng* gen = nullptr);

 protected:
  const char* type_name() const override { return "FmnistClassifier"; }

 private:
  class Dense;  // weight (out, in) [+ bias]
  std::shared_ptr<Dense> conv_[4];
  std::shared_ptr<nn::BatchNorm2d> bn_[4];
  std::shared_ptr<Dense> fc1_, fc2_;
};

// Mean cross-entropy of logits (B, K) against int64 labels (B), computed
// through a stable log-softmax; differentiable in logits.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

// Where the committed weights live: $SAGAN_FMNIST_WEIGHTS when set, else
// the installed copy beside the program (<prefix>/share/sagan for a program
// in <prefix>/bin); for a program of the build tree, then
// models/quality/weights/fmnist_cnn.safetensors in the source tree; for any
// other, the configured prefix's copy, else the source tree's. A program of
// its own linking an install at another prefix passes the file it finds
// under find_package(sagan)'s SAGAN_DATA_DIR.
std::string default_fmnist_weights();

// The classifier as a FeatureNet: RGB images are converted to gray (luma
// 0.299 R + 0.587 G + 0.114 B) and every image is resized bilinearly to
// 28x28, so real and generated images take the same path.
class FmnistFeatureNet : public FeatureNet {
 public:
  // Errors name the file and the tensor (FmnistClassifier's state names).
  explicit FmnistFeatureNet(const std::string& weights_path, Device device = {});
  std::string name() const override { return "fmnist-cnn-fc1-128"; }
  int64_t feature_dim() const override { return FmnistClassifier::kFeatures; }
  int64_t num_classes() const override { return FmnistClassifier::kClasses; }
  Device device() const override { return device_; }
  Output embed(const Tensor& images) override;
  FmnistClassifier& model() { return *model_; }

 private:
  std::unique_ptr<FmnistClassifier> model_;
  Device device_;
};

}  // namespace sagan::quality
