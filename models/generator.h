// The SAGAN generator: SN linear z -> (4x4, widths[0]), residual up blocks
// (GBlock) with self-attention after the block of each configured
// resolution, then BN -> ReLU -> SN conv3x3 -> tanh. Tensor names match
// tests/golden/sagan_reference.py: linear.*, blocks.<i>.* (attention blocks
// take their own index in the sequence), bn.*, conv_out.*.
#pragma once
#include <memory>
#include <variant>
#include <vector>

#include "sagan/layers/batch_norm.h"
#include "sagan/layers/conv2d.h"
#include "sagan/layers/gblock.h"
#include "sagan/layers/linear.h"
#include "sagan/layers/self_attention.h"
#include "sagan/models/config.h"

namespace sagan {

class SaganGenerator : public nn::Module {
 public:
  // Validates cfg; initialises from gen (xavier weights, zero biases).
  SaganGenerator(const SaganConfig& cfg, Rng& gen);
  // z (B, z_dim), y int64 (B) class labels (ignored when unconditional)
  // -> images (B, image_channels, R, R) in [-1, 1].
  Tensor forward(const Tensor& z, const Tensor& y = {});
  const SaganConfig& config() const { return cfg_; }
  // One batched power iteration for every SN layer (see layers/spectral_norm.h).
  int64_t power_iterate_all() { return nn::power_iterate_all(*this); }
  std::vector<nn::SelfAttention*> attention_layers() const;

 protected:
  const char* type_name() const override { return "SaganGenerator"; }

 private:
  SaganConfig cfg_;
  // One entry of `blocks`, run in order: an up block (which takes the labels)
  // or a self-attention block.
  using Block = std::variant<std::shared_ptr<nn::GBlock>, std::shared_ptr<nn::SelfAttention>>;

  std::shared_ptr<nn::SNLinear> linear_;
  std::vector<Block> blocks_;  // blocks.<i>
  std::shared_ptr<nn::BatchNorm2d> bn_;
  std::shared_ptr<nn::SNConv2d> conv_out_;
};

// The truncation trick's --truncation (each z component redrawn while
// |z| > t): 0 (off) or a finite value of at least kMinTruncation; a smaller
// one would redraw nearly every component for ever (P(|z| <= t) is about
// 0.8 t). sagan-sample, sagan-attention and sagan-export share the rule.
inline constexpr double kMinTruncation = 1e-3;
void check_truncation(double truncation);

}  // namespace sagan
