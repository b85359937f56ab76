#include "sagan/layers/dblock.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

namespace {
void check_block_input(const char* block, const Tensor& x, int64_t c, bool down) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == c, "{}: input must be (B, {}, H, W), got {}", block, c,
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  if (down)
    SAGAN_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0, "{}: downsampling needs even H and W, got input {}", block,
                shape_str(x.shape()));
}
}  // namespace

DOptimizedBlock::DOptimizedBlock(int64_t in_channels, int64_t out_channels, Rng& gen)
    : in_(in_channels), out_(out_channels) {
  conv1_ = register_module("conv1", std::make_shared<SNConv2d>(in_channels, out_channels, 3, gen));
  conv2_ = register_module("conv2", std::make_shared<SNConv2d>(out_channels, out_channels, 3, gen));
  conv_sc_ = register_module("conv_sc", std::make_shared<SNConv2d>(in_channels, out_channels, 1, gen));
}

Tensor DOptimizedBlock::forward(const Tensor& x) {
  check_block_input("DOptimizedBlock", x, in_, true);
  Tensor h = avg_pool2x2(conv2_->forward(relu(conv1_->forward(x))));
  return add(h, conv_sc_->forward(avg_pool2x2(x)));
}

DBlock::DBlock(int64_t in_channels, int64_t out_channels, bool down, Rng& gen)
    : in_(in_channels), out_(out_channels), down_(down) {
  conv1_ = register_module("conv1", std::make_shared<SNConv2d>(in_channels, out_channels, 3, gen));
  conv2_ = register_module("conv2", std::make_shared<SNConv2d>(out_channels, out_channels, 3, gen));
  if (down || in_channels != out_channels)
    conv_sc_ = register_module("conv_sc", std::make_shared<SNConv2d>(in_channels, out_channels, 1, gen));
}

Tensor DBlock::forward(const Tensor& x) {
  check_block_input("DBlock", x, in_, down_);
  Tensor h = conv2_->forward(relu(conv1_->forward(relu(x))));
  if (down_) h = avg_pool2x2(h);
  // A 1x1 conv commutes with average pooling: pooling first is the same
  // function at a quarter of the cost.
  Tensor s = down_ ? avg_pool2x2(x) : x;
  if (conv_sc_) s = conv_sc_->forward(s);
  return add(h, s);
}

}  // namespace sagan::nn
