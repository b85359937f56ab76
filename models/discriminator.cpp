#include "sagan/models/discriminator.h"

#include <algorithm>

#include "sagan/core/ops.h"

namespace sagan {

SaganDiscriminator::SaganDiscriminator(const SaganConfig& cfg, Rng& gen) : cfg_(cfg) {
  cfg_.validate();
  std::vector<SaganConfig::DBlockSpec> specs = cfg_.d_blocks();
  std::vector<int64_t> attn = cfg_.d_attention();
  auto add_block = [&](auto block) {
    blocks_.push_back(register_module(fmt::format("blocks.{}", blocks_.size()), block));
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    if (i == 0)
      add_block(std::make_shared<nn::DOptimizedBlock>(s.in, s.out, gen));
    else
      add_block(std::make_shared<nn::DBlock>(s.in, s.out, s.down, gen));
    auto it = std::find(attn.begin(), attn.end(), s.out_res);
    if (it != attn.end()) {
      attn.erase(it);  // only after the first block at that resolution
      add_block(std::make_shared<nn::SelfAttention>(s.out, gen, cfg_.pooled_attention));
    }
  }
  int64_t c = specs.back().out;
  linear_ = register_module("linear", std::make_shared<nn::SNLinear>(c, 1, gen));
  if (cfg_.num_classes > 0)
    embed_ = register_module("embed", std::make_shared<nn::SNEmbedding>(cfg_.num_classes, c, gen));
}

Tensor SaganDiscriminator::forward(const Tensor& x, const Tensor& y) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.image_channels && x.size(2) == cfg_.resolution &&
                  x.size(3) == cfg_.resolution,
              "SaganDiscriminator: images must be (B, {}, {}, {}), got {}", cfg_.image_channels, cfg_.resolution,
              cfg_.resolution, x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  int64_t b = x.size(0);
  if (cfg_.num_classes > 0)
    SAGAN_CHECK(y.defined() && y.dtype() == DType::I64 && y.dim() == 1 && y.size(0) == b,
                "SaganDiscriminator: a conditional model ({} classes) needs int64 labels of shape [{}], got {}",
                cfg_.num_classes, b,
                y.defined() ? fmt::format("{} {}", dtype_name(y.dtype()), shape_str(y.shape())) : "none");
  if (cfg_.num_classes > 0) check_class_labels("SaganDiscriminator", "labels", y, cfg_.num_classes);
  Tensor h = x;
  for (const Block& block : blocks_) h = std::visit([&](const auto& b) { return b->forward(h); }, block);
  h = sum(relu(h), {2, 3});  // (B, C)
  Tensor out = linear_->forward(h).view({b});
  if (embed_) out = add(out, sum(mul(embed_->forward(y), h), {1}));
  return out;
}

std::vector<nn::SelfAttention*> SaganDiscriminator::attention_layers() const {
  std::vector<nn::SelfAttention*> out;
  for (const Block& block : blocks_)
    if (auto* a = std::get_if<std::shared_ptr<nn::SelfAttention>>(&block)) out.push_back(a->get());
  return out;
}

}  // namespace sagan
