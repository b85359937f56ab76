#include "sagan/layers/conv2d.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

namespace {
// Checked before the base class draws its power-iteration vectors, whose
// own message would name only an internal helper.
Shape sn_conv2d_weight_shape(int64_t in_channels, int64_t out_channels, int64_t kernel) {
  SAGAN_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0 && kernel % 2 == 1,
              "SNConv2d: need positive channels and an odd kernel, got in {}, out {}, kernel {}", in_channels,
              out_channels, kernel);
  return {out_channels, in_channels, kernel, kernel};
}
}  // namespace

SNConv2d::SNConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Rng& gen, bool bias)
    : SpectralNormed(sn_conv2d_weight_shape(in_channels, out_channels, kernel), gen),
      in_(in_channels),
      out_(out_channels),
      kernel_(kernel),
      bias_(bias) {
  if (bias) register_parameter("bias", Tensor::zeros({out_channels}));
}

Tensor SNConv2d::forward(const Tensor& x) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == in_, "SNConv2d: input must be (B, {}, H, W), got {}", in_,
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  std::optional<Tensor> b;
  if (bias_) b = param("bias");
  return conv2d(x, normalized_weight(), b, 1, kernel_ / 2);
}

}  // namespace sagan::nn
