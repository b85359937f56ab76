// SAGAN self-attention block. Official form (pooled = true):
//   theta = SN conv1x1 C -> C/8           queries (B, N, C/8), N = H*W
//   phi   = SN conv1x1 C -> C/8, maxpool  keys    (B, S, C/8), S = N/4
//   g     = SN conv1x1 C -> C/2, maxpool  values  (B, S, C/2)
//   o     = SN conv1x1 C/2 -> C of softmax(theta phi^T) g (no 1/sqrt(d))
//   y     = x + gamma * o, gamma (1) initialised to 0
// pooled = false is the paper's text: no pooling, g C -> C, no output conv.
// All 1x1 convs have no bias. The softmax-weighted sum is the single engine
// op attention(q, k, v), so the (B, N, S) map is never kept unless asked for.
#pragma once
#include <memory>

#include "sagan/layers/conv2d.h"

namespace sagan::nn {

class SelfAttention : public Module {
 public:
  SelfAttention(int64_t channels, Rng& gen, bool pooled = true);
  Tensor forward(const Tensor& x);  // (B, C, H, W) -> same
  // Keep the attention map of each forward (B, N, S), for visualisation.
  void set_keep_attention_map(bool on) { keep_map_ = on; }
  Tensor last_attention_map() const { return map_; }
  Tensor gamma() const { return param("gamma"); }
  int64_t channels() const { return c_; }
  bool pooled() const { return pooled_; }

 protected:
  const char* type_name() const override { return "SelfAttention"; }

 private:
  int64_t c_;
  bool pooled_;
  bool keep_map_ = false;
  Tensor map_;
  std::shared_ptr<SNConv2d> theta_, phi_, g_, o_;
};

}  // namespace sagan::nn
