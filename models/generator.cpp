#include "sagan/models/generator.h"

#include <algorithm>
#include <cmath>

#include "sagan/core/ops.h"

namespace sagan {

namespace {
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;
}  // namespace

SaganGenerator::SaganGenerator(const SaganConfig& cfg, Rng& gen) : cfg_(cfg) {
  cfg_.validate();
  std::vector<int64_t> widths = cfg_.g_widths(), res = cfg_.g_block_res(), attn = cfg_.g_attention();
  linear_ = register_module("linear", std::make_shared<nn::SNLinear>(cfg_.z_dim, widths[0] * 16, gen));
  auto add_block = [&](auto block) {
    blocks_.push_back(register_module(fmt::format("blocks.{}", blocks_.size()), block));
  };
  for (size_t i = 1; i < widths.size(); ++i) {
    add_block(std::make_shared<nn::GBlock>(widths[i - 1], widths[i], cfg_.num_classes, gen));
    if (std::find(attn.begin(), attn.end(), res[i - 1]) != attn.end())
      add_block(std::make_shared<nn::SelfAttention>(widths[i], gen, cfg_.pooled_attention));
  }
  bn_ = register_module("bn", std::make_shared<nn::BatchNorm2d>(widths.back()));
  conv_out_ = register_module("conv_out", std::make_shared<nn::SNConv2d>(widths.back(), cfg_.image_channels, 3, gen));
}

Tensor SaganGenerator::forward(const Tensor& z, const Tensor& y) {
  SAGAN_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.z_dim, "SaganGenerator: z must be (B, {}), got {}",
              cfg_.z_dim, z.defined() ? shape_str(z.shape()) : std::string("undefined"));
  int64_t b = z.size(0);
  if (cfg_.num_classes > 0)
    SAGAN_CHECK(y.defined() && y.dtype() == DType::I64 && y.dim() == 1 && y.size(0) == b,
                "SaganGenerator: a conditional model ({} classes) needs int64 labels of shape [{}], got {}",
                cfg_.num_classes, b,
                y.defined() ? fmt::format("{} {}", dtype_name(y.dtype()), shape_str(y.shape())) : "none");
  if (cfg_.num_classes > 0) check_class_labels("SaganGenerator", "labels", y, cfg_.num_classes);
  Tensor h = linear_->forward(z).view({b, cfg_.g_widths()[0], 4, 4});
  for (const Block& block : blocks_)
    h = std::visit(Overloaded{[&](const std::shared_ptr<nn::GBlock>& b) { return b->forward(h, y); },
                              [&](const std::shared_ptr<nn::SelfAttention>& a) { return a->forward(h); }},
                   block);
  return tanh(conv_out_->forward(relu(bn_->forward(h))));
}

std::vector<nn::SelfAttention*> SaganGenerator::attention_layers() const {
  std::vector<nn::SelfAttention*> out;
  for (const Block& block : blocks_)
    if (auto* a = std::get_if<std::shared_ptr<nn::SelfAttention>>(&block)) out.push_back(a->get());
  return out;
}

void check_truncation(double truncation) {
  SAGAN_CHECK(truncation == 0 || (std::isfinite(truncation) && truncation >= kMinTruncation),
              "--truncation: expected 0 (off) or a finite value of at least {} (smaller ones redraw nearly every "
              "z component for ever), got {}",
              kMinTruncation, truncation);
}

}  // namespace sagan
