#include "sagan/layers/batch_norm.h"

#include "sagan/core/ops.h"
#include "sagan/layers/sync_batch_norm.h"

namespace sagan::nn {

namespace {
void check_norm_input(const char* layer, const Tensor& x, int64_t c) {
  SAGAN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == c, "{}: input must be (B, {}, H, W), got {}", layer, c,
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
}

// (C) -> (1, C, 1, 1) so it broadcasts over NCHW.
Tensor per_channel(const Tensor& t) { return t.view({1, t.size(0), 1, 1}); }
}  // namespace

Tensor BatchNormBase::normalise(const Tensor& x) {
  if (sync_ && is_training())
    return sync_batch_norm(x, buffer("running_mean"), buffer("running_var"), kBatchNormMomentum, kBatchNormEps, sync_);
  return batch_norm(x, buffer("running_mean"), buffer("running_var"), is_training(), kBatchNormMomentum, kBatchNormEps);
}

int set_sync_batch_norm(Module& m, const std::shared_ptr<dist::Communicator>& comm) {
  int n = 0;
  for (Module* sub : m.modules())
    if (auto* bn = dynamic_cast<BatchNormBase*>(sub)) {
      bn->set_sync_communicator(comm);
      ++n;
    }
  return n;
}

std::vector<Tensor> batch_norm_statistics(Module& m) {
  std::vector<Tensor> out;
  for (Module* sub : m.modules())
    if (dynamic_cast<BatchNormBase*>(sub)) {
      out.push_back(sub->tensor("running_mean"));
      out.push_back(sub->tensor("running_var"));
    }
  return out;
}

BatchNorm2d::BatchNorm2d(int64_t channels) : c_(channels) {
  SAGAN_CHECK(channels > 0, "BatchNorm2d: channels must be positive, got {}", channels);
  register_parameter("weight", Tensor::ones({channels}));
  register_parameter("bias", Tensor::zeros({channels}));
  register_buffer("running_mean", Tensor::zeros({channels}));
  register_buffer("running_var", Tensor::ones({channels}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  check_norm_input("BatchNorm2d", x, c_);
  Tensor h = normalise(x);
  return add(mul(h, per_channel(param("weight"))), per_channel(param("bias")));
}

ConditionalBatchNorm2d::ConditionalBatchNorm2d(int64_t channels, int64_t num_classes) : c_(channels), k_(num_classes) {
  SAGAN_CHECK(channels > 0 && num_classes >= 0,
              "ConditionalBatchNorm2d: need positive channels and num_classes >= 0, got {} and {}", channels,
              num_classes);
  if (num_classes > 0) {
    gain_ = register_module("gain", std::make_shared<Embedding>(num_classes, channels, 0.0));
    bias_ = register_module("bias", std::make_shared<Embedding>(num_classes, channels, 0.0));
  } else {
    register_parameter("weight", Tensor::ones({channels}));
    register_parameter("bias", Tensor::zeros({channels}));
  }
  register_buffer("running_mean", Tensor::zeros({channels}));
  register_buffer("running_var", Tensor::ones({channels}));
}

Tensor ConditionalBatchNorm2d::forward(const Tensor& x, const Tensor& y) {
  check_norm_input("ConditionalBatchNorm2d", x, c_);
  Tensor h = normalise(x);
  if (k_ == 0) return add(mul(h, per_channel(param("weight"))), per_channel(param("bias")));
  SAGAN_CHECK(y.defined() && y.dim() == 1 && y.size(0) == x.size(0),
              "ConditionalBatchNorm2d: labels must be (B) = ({}) for input {}, got {}", x.size(0), shape_str(x.shape()),
              y.defined() ? shape_str(y.shape()) : std::string("undefined"));
  int64_t b = x.size(0);
  Tensor gamma = add(gain_->forward(y), 1.0).view({b, c_, 1, 1});
  Tensor beta = bias_->forward(y).view({b, c_, 1, 1});
  return add(mul(h, gamma), beta);
}

}  // namespace sagan::nn
