#include "sagan/layers/self_attention.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

SelfAttention::SelfAttention(int64_t channels, Rng& gen, bool pooled) : c_(channels), pooled_(pooled) {
  SAGAN_CHECK(channels >= 8 && channels % 8 == 0, "SelfAttention: channels must be a positive multiple of 8, got {}",
              channels);
  int64_t cv = pooled ? channels / 2 : channels;
  theta_ = register_module("theta", std::make_shared<SNConv2d>(channels, channels / 8, 1, gen, false));
  phi_ = register_module("phi", std::make_shared<SNConv2d>(channels, channels / 8, 1, gen, false));
  g_ = register_module("g", std::make_shared<SNConv2d>(channels, cv, 1, gen, false));
  if (pooled) o_ = register_module("o", std::make_shared<SNConv2d>(cv, channels, 1, gen, false));
  register_parameter("gamma", Tensor::zeros({1}));
}

namespace {
// (B, C', H', W') -> (B, H'*W', C'): one row per position (a strided view;
// the attention op makes its own contiguous copy).
Tensor positions(const Tensor& t) { return t.view({t.size(0), t.size(1), t.size(2) * t.size(3)}).transpose(1, 2); }
}  // namespace

Tensor SelfAttention::forward(const Tensor& x) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == c_, "SelfAttention: input must be (B, {}, H, W), got {}", c_,
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  if (pooled_)
    SAGAN_CHECK(h % 2 == 0 && w % 2 == 0, "SelfAttention: pooled attention needs even H and W, got input {}",
                shape_str(x.shape()));
  Tensor q = positions(theta_->forward(x));  // (B, N, C/8)
  Tensor k = phi_->forward(x), v = g_->forward(x);
  if (pooled_) {
    k = max_pool2x2(k);
    v = max_pool2x2(v);
  }
  AttentionResult att = attention(q, positions(k), positions(v), keep_map_);  // out (B, N, Cv)
  map_ = keep_map_ ? att.map : Tensor();
  Tensor o = att.out.transpose(1, 2).contiguous().view({b, v.size(1), h, w});
  if (pooled_) o = o_->forward(o);
  return add(x, mul(o, param("gamma")));
}

}  // namespace sagan::nn
