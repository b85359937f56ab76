// Discriminator residual blocks (official SAGAN / SNGAN), convs 3x3 with a
// 1x1 shortcut, avg = 2x2 average pooling:
//   DOptimizedBlock (first block, on the image, always down):
//     y = avg(conv2(relu(conv1(x)))) + conv_sc(avg(x))
//   DBlock (pre-activation, `down` optional):
//     h = conv2(relu(conv1(relu(x)))), y = [avg](h) + [avg](conv_sc(x)),
//     the shortcut conv only when channels change or down (else identity).
#pragma once
#include <memory>

#include "sagan/layers/conv2d.h"

namespace sagan::nn {

class DOptimizedBlock : public Module {
 public:
  DOptimizedBlock(int64_t in_channels, int64_t out_channels, Rng& gen);
  Tensor forward(const Tensor& x);  // (B, Cin, H, W) -> (B, Cout, H/2, W/2)
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }

 protected:
  const char* type_name() const override { return "DOptimizedBlock"; }

 private:
  int64_t in_, out_;
  std::shared_ptr<SNConv2d> conv1_, conv2_, conv_sc_;
};

class DBlock : public Module {
 public:
  DBlock(int64_t in_channels, int64_t out_channels, bool down, Rng& gen);
  Tensor forward(const Tensor& x);  // (B, Cin, H, W) -> (B, Cout, H/2 or H, ...)
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  bool down() const { return down_; }

 protected:
  const char* type_name() const override { return "DBlock"; }

 private:
  int64_t in_, out_;
  bool down_;
  std::shared_ptr<SNConv2d> conv1_, conv2_, conv_sc_;
};

}  // namespace sagan::nn
