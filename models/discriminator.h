// The SAGAN projection discriminator: DOptimizedBlock then DBlocks, with
// self-attention after the first block of each configured resolution, then
// ReLU -> global sum pool -> SN linear to 1, plus the projection
// sum(SN_embed(y) * h) for a conditional model. Tensor names match
// tests/golden/sagan_reference.py: blocks.<i>.*, linear.*, embed.*.
#pragma once
#include <memory>
#include <variant>
#include <vector>

#include "sagan/layers/dblock.h"
#include "sagan/layers/embedding.h"
#include "sagan/layers/linear.h"
#include "sagan/layers/self_attention.h"
#include "sagan/models/config.h"

namespace sagan {

class SaganDiscriminator : public nn::Module {
 public:
  SaganDiscriminator(const SaganConfig& cfg, Rng& gen);
  // x (B, image_channels, R, R), y int64 (B) (ignored when unconditional)
  // -> scores (B).
  Tensor forward(const Tensor& x, const Tensor& y = {});
  const SaganConfig& config() const { return cfg_; }
  int64_t power_iterate_all() { return nn::power_iterate_all(*this); }
  std::vector<nn::SelfAttention*> attention_layers() const;

 protected:
  const char* type_name() const override { return "SaganDiscriminator"; }

 private:
  SaganConfig cfg_;
  // One entry of `blocks`, run in order: the first (optimised) block, a
  // residual down block or a self-attention block.
  using Block = std::variant<std::shared_ptr<nn::DOptimizedBlock>, std::shared_ptr<nn::DBlock>,
                             std::shared_ptr<nn::SelfAttention>>;

  std::vector<Block> blocks_;  // blocks.<i>
  std::shared_ptr<nn::SNLinear> linear_;
  std::shared_ptr<nn::SNEmbedding> embed_;
};

}  // namespace sagan
