// Generator residual up block (official SAGAN / SNGAN):
//   h = conv2(relu(cbn2(conv1(up(relu(cbn1(x, y)))), y)))     conv 3x3
//   y = h + conv_sc(up(x))                                    conv 1x1
// up = nearest 2x. (B, Cin, H, W) -> (B, Cout, 2H, 2W).
#pragma once
#include <memory>

#include "sagan/layers/batch_norm.h"
#include "sagan/layers/conv2d.h"

namespace sagan::nn {

class GBlock : public Module {
 public:
  GBlock(int64_t in_channels, int64_t out_channels, int64_t num_classes, Rng& gen);
  Tensor forward(const Tensor& x, const Tensor& y);
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }

 protected:
  const char* type_name() const override { return "GBlock"; }

 private:
  int64_t in_, out_;
  std::shared_ptr<ConditionalBatchNorm2d> bn1_, bn2_;
  std::shared_ptr<SNConv2d> conv1_, conv2_, conv_sc_;
};

}  // namespace sagan::nn
