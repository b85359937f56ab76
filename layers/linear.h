// SNLinear: spectrally normalised x W^T + b. torch names: weight_orig, bias,
// weight_u (out), weight_v (in).
#pragma once
#include "sagan/layers/spectral_norm.h"

namespace sagan::nn {

class SNLinear : public SpectralNormed {
 public:
  SNLinear(int64_t in_features, int64_t out_features, Rng& gen, bool bias = true);
  // x (B, in) -> (B, out)
  Tensor forward(const Tensor& x);
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 protected:
  const char* type_name() const override { return "SNLinear"; }

 private:
  int64_t in_, out_;
  bool bias_;
};

}  // namespace sagan::nn
