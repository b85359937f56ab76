// FeatureNet: what the metrics need from a network: a feature vector (for
// FID / KID / precision-recall) and class logits (for the Inception Score)
// per image. Images come as the generator makes them: (B, C, H, W) in
// [-1, 1]; each network resizes and converts channels itself so that real
// and generated images go through the same path.
#pragma once
#include <cstdint>
#include <string>

#include "sagan/core/tensor.h"

namespace sagan::quality {

class FeatureNet {
 public:
  virtual ~FeatureNet() = default;
  // Recorded in statistics files: features from different nets never mix.
  virtual std::string name() const = 0;
  virtual int64_t feature_dim() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual Device device() const = 0;

  struct Output {
    Tensor features;  // (B, feature_dim) float32
    Tensor logits;    // (B, num_classes) float32
  };
  // No gradients are recorded. Throws naming the net and the shape when the
  // images are not (B, 1 or 3, H, W).
  virtual Output embed(const Tensor& images) = 0;
};

}  // namespace sagan::quality
