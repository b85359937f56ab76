#include "sagan/layers/linear.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

namespace {
// Checked before the base class draws its power-iteration vectors, whose
// own message would name only an internal helper.
Shape sn_linear_weight_shape(int64_t in_features, int64_t out_features) {
  SAGAN_CHECK(in_features > 0 && out_features > 0, "SNLinear: need positive in and out features, got {} and {}",
              in_features, out_features);
  return {out_features, in_features};
}
}  // namespace

SNLinear::SNLinear(int64_t in_features, int64_t out_features, Rng& gen, bool bias)
    : SpectralNormed(sn_linear_weight_shape(in_features, out_features), gen),
      in_(in_features),
      out_(out_features),
      bias_(bias) {
  if (bias) register_parameter("bias", Tensor::zeros({out_features}));
}

Tensor SNLinear::forward(const Tensor& x) {
  SAGAN_CHECK(x.defined() && x.dim() == 2 && x.size(1) == in_, "SNLinear: input must be (B, {}), got {}", in_,
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  std::optional<Tensor> b;
  if (bias_) b = param("bias");
  return linear(x, normalized_weight(), b);
}

}  // namespace sagan::nn
