// Inception-v3 as used for FID: the TensorFlow-ported network of pytorch-fid
// (torchvision's Inception3 with FIDInceptionA/C/E blocks), run by the engine.
//
//   images (B, 1|3, H, W) in [-1, 1]   (gray repeated to RGB)
//   -> bilinear resize to 299x299 (align_corners=False), as pytorch-fid does
//   -> Conv2d_1a..4a, two 3x3/2 max pools, Mixed_5b..7c
//   -> adaptive average pool: the 2048-d "pool3" features FID uses
//   -> logits = pool3 @ fc.weight^T: 1008 classes without the bias, the
//      logits the original Inception Score code (and torch-fidelity's
//      "logits_unbiased") uses.
// What distinguishes the FID port from torchvision's ImageNet network: the
// average pools of Mixed_5*, 6b-e and 7b leave the zero padding out of the
// count (count_include_pad=False), Mixed_7c pools with a 3x3 stride-1 max
// instead, and fc has 1008 outputs.
//
// Every BasicConv2d (conv without bias, batch norm eps 1e-3, relu) is folded
// at load time into one conv with bias: w' = w g / sqrt(v + eps),
// b' = beta - m g / sqrt(v + eps), computed in float64. Square kernels run
// through conv2d (on any device); the 1x7 / 7x1 / 1x3 / 3x1 kernels through
// conv2d_rect, and the 1x1 convs that read the same block input are fused
// into one wider conv.
//
// Weights: a safetensors file with pytorch-fid's state-dict names
// ("Conv2d_1a_3x3.conv.weight", "Mixed_6b.branch7x7_2.bn.running_var",
// "fc.weight", ...), as tools/convert_fid_inception.py writes from
// pytorch-fid's pt_inception-2015-12-05-6726825d.pth.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sagan/core/ops_vision.h"
#include "sagan/models/quality/feature_net.h"

namespace sagan::quality {

class FidInception : public FeatureNet {
 public:
  static constexpr int64_t kInputSize = 299;
  static constexpr int64_t kFeatures = 2048;
  static constexpr int64_t kClasses = 1008;
  static constexpr double kBnEps = 1e-3;

  // Every tensor of expected_tensors() must be present with its shape;
  // "*.num_batches_tracked" is ignored and any other name is an error (a
  // different network's file). Errors name `source` and the tensor.
  FidInception(const std::map<std::string, Tensor>& weights, const std::string& source = "weights",
               DType dtype = DType::F32, Device device = {});
  static std::unique_ptr<FidInception> load(const std::string& path, DType dtype = DType::F32, Device device = {});

  // Name and shape of every tensor the weights must hold, in network order.
  static std::vector<std::pair<std::string, Shape>> expected_tensors();

  std::string name() const override { return "inception-v3-fid-pool3"; }
  int64_t feature_dim() const override { return kFeatures; }
  int64_t num_classes() const override { return kClasses; }
  Device device() const override { return device_; }
  Output embed(const Tensor& images) override;

  struct Result {
    Tensor pool3;        // (B, 2048)
    Tensor logits;       // (B, 1008), pool3 @ fc.weight^T
    Tensor logits_bias;  // (B, 1008), with fc.bias added (torchvision's fc output)
  };
  // As embed() but in the net's dtype and at any input size >= 75 (the
  // smallest the stride-2 stages allow), for tests at reduced size.
  Result forward(const Tensor& images, int64_t input_size = kInputSize) const;

  // The image size the conv stages see at each input size must be >= 75.
  static constexpr int64_t kMinInputSize = 75;

 private:
  struct Conv {
    Tensor w, b;  // folded (Co, Ci, kh, kw), (Co)
    Conv2dRectGeom g;
    Tensor operator()(const Tensor& x) const;  // conv + bias + relu
  };
  // The 1x1 convs that read a block's input, fused: one conv, split by channels.
  struct Fused {
    Conv conv;
    std::vector<int64_t> splits;
    std::vector<Tensor> operator()(const Tensor& x) const;
  };
  // One Mixed_* block; `convs` in the order the kind's forward uses them.
  struct Block {
    char kind = 'A';        // torchvision's InceptionA..E
    bool max_pool = false;  // Mixed_7c's branch pool
    Fused heads;
    std::vector<Conv> convs;
    Conv pool_conv;  // A, C, E
    Tensor forward(const Tensor& x) const;
  };

  Conv make_conv(const std::string& name, int64_t ci, int64_t co, int64_t kh, int64_t kw, int64_t sh = 1,
                 int64_t sw = 1, int64_t ph = 0, int64_t pw = 0);
  Fused make_fused(const std::string& block, const std::vector<std::string>& names, int64_t ci,
                   const std::vector<int64_t>& cos);
  Block block_a(const std::string& n, int64_t ci, int64_t pool_features);
  Block block_b(const std::string& n, int64_t ci);
  Block block_c(const std::string& n, int64_t ci, int64_t c7);
  Block block_d(const std::string& n, int64_t ci);
  Block block_e(const std::string& n, int64_t ci, bool max_pool);
  Tensor take(const std::string& name, const Shape& shape);  // a weight, checked, as float64

  const std::map<std::string, Tensor>* weights_ = nullptr;  // only during construction
  std::string source_;
  DType dtype_;
  Device device_;
  std::vector<std::pair<std::string, Shape>> expected_;  // filled while building
  std::vector<Conv> stem_;
  std::vector<Block> blocks_;
  Tensor fc_w_, fc_b_;
};

}  // namespace sagan::quality
