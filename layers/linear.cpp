#include "sagan/layers/linear.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

SNLinear::SNLinear(int64_t in_features, int64_t out_features, Rng& gen, bool bias)
    : SpectralNormed({out_features, in_features}, gen), in_(in_features), out_(out_features), bias_(bias) {
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
