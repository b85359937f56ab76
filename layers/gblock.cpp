#include "sagan/layers/gblock.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

GBlock::GBlock(int64_t in_channels, int64_t out_channels, int64_t num_classes, Rng& gen)
    : in_(in_channels), out_(out_channels) {
  bn1_ = register_module("bn1", std::make_shared<ConditionalBatchNorm2d>(in_channels, num_classes));
  conv1_ = register_module("conv1", std::make_shared<SNConv2d>(in_channels, out_channels, 3, gen));
  bn2_ = register_module("bn2", std::make_shared<ConditionalBatchNorm2d>(out_channels, num_classes));
  conv2_ = register_module("conv2", std::make_shared<SNConv2d>(out_channels, out_channels, 3, gen));
  conv_sc_ = register_module("conv_sc", std::make_shared<SNConv2d>(in_channels, out_channels, 1, gen));
}

Tensor GBlock::forward(const Tensor& x, const Tensor& y) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == in_, "GBlock: input must be (B, {}, H, W), got {}", in_,
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  Tensor h = upsample_nearest2x(relu(bn1_->forward(x, y)));
  h = conv2_->forward(relu(bn2_->forward(conv1_->forward(h), y)));
  // A 1x1 conv commutes with nearest upsampling: convolving first is the
  // same function at a quarter of the cost.
  Tensor s = upsample_nearest2x(conv_sc_->forward(x));
  return add(h, s);
}

}  // namespace sagan::nn
