// SNConv2d: spectrally normalised 2-d convolution, stride 1, "same" padding
// (k odd), optional bias. torch names: weight_orig, bias, weight_u, weight_v.
#pragma once
#include "sagan/layers/spectral_norm.h"

namespace sagan::nn {

class SNConv2d : public SpectralNormed {
 public:
  SNConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Rng& gen, bool bias = true);
  // x (B, Ci, H, W) -> (B, Co, H, W)
  Tensor forward(const Tensor& x);
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }

 protected:
  const char* type_name() const override { return "SNConv2d"; }

 private:
  int64_t in_, out_, kernel_;
  bool bias_;
};

}  // namespace sagan::nn
