#include "sagan/layers/flat_parameters.h"

#include <cmath>
#include <set>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"

namespace sagan::nn {

namespace {
int64_t round_up(int64_t n, int64_t k) { return (n + k - 1) / k * k; }
}  // namespace

FlatParameters::FlatParameters(const NamedTensors& params, bool with_grad) {
  DType dtype = params.empty() ? DType::F32 : params[0].second.dtype();
  Device device = params.empty() ? Device{} : params[0].second.device();
  std::set<std::string> seen;
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    SAGAN_CHECK(p.defined(), "FlatParameters: parameter '{}' is undefined", name);
    SAGAN_CHECK(seen.insert(name).second, "FlatParameters: parameter '{}' given twice", name);
    SAGAN_CHECK(is_floating(p.dtype()), "FlatParameters: parameter '{}' is {}; parameters are floating", name,
                dtype_name(p.dtype()));
    SAGAN_CHECK(p.dtype() == dtype && p.device() == device,
                "FlatParameters: parameter '{}' is {} on {}, '{}' is {} on {}: one buffer holds one dtype on one "
                "device",
                name, dtype_name(p.dtype()), device_name(p.device()), params[0].first, dtype_name(dtype),
                device_name(device));
    ranges_.push_back({i, name, p.shape(), offset, p.numel()});
    offset += round_up(p.numel(), kAlign);
  }
  data_ = Tensor::zeros({offset}, dtype, device);
  if (with_grad) grad_ = Tensor::zeros({offset}, dtype, device);
  make_views();
  NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i) params_[i].copy_(params[i].second);
}

FlatParameters::FlatParameters(const FlatParameters& src, const Tensor& new_data)
    : ranges_(src.ranges_), data_(new_data), hook_(src.hook_) {
  if (src.grad_.defined()) grad_ = Tensor::zeros({data_.numel()}, data_.dtype(), data_.device());
  make_views();
}

std::vector<Tensor> FlatParameters::views_of(const Tensor& flat) const {
  SAGAN_CHECK(flat.defined() && flat.dim() == 1 && flat.numel() == size() && flat.is_contiguous(),
              "FlatParameters::views_of: need a contiguous buffer of shape [{}], got {}", size(),
              flat.defined() ? shape_str(flat.shape()) : std::string("undefined"));
  std::vector<Tensor> out;
  out.reserve(ranges_.size());
  for (const ParamRange& r : ranges_) out.push_back(flat.narrow(0, r.offset, r.numel).view(r.shape));
  return out;
}

void FlatParameters::make_views() {
  NoGradGuard ng;
  params_ = views_of(data_);
  std::vector<Tensor> grads = grad_.defined() ? views_of(grad_) : std::vector<Tensor>();
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    p = p.detach();
    p.set_requires_grad(true);
    if (grad_.defined()) {
      auto slot = std::make_shared<GradSlot>();
      slot->grad = grads[i];
      p.impl()->grad_slot = std::move(slot);
    }
  }
  attach_hook();
}

NamedTensors FlatParameters::named_params() const {
  NamedTensors out;
  out.reserve(ranges_.size());
  for (size_t i = 0; i < ranges_.size(); ++i) out.emplace_back(ranges_[i].name, params_[i]);
  return out;
}

void FlatParameters::zero_grad() {
  if (!grad_.defined()) {
    for (const Tensor& p : params_) p.set_grad(Tensor());
    return;
  }
  NoGradGuard ng;
  grad_.zero_();
  for (const Tensor& p : params_) p.impl()->grad = nullptr;
}

bool FlatParameters::all_have_grad() const {
  for (const Tensor& p : params_)
    if (!p.impl()->grad) return false;
  return true;
}

Tensor FlatParameters::grad_norm() const {
  SAGAN_CHECK(grad_.defined(), "FlatParameters::grad_norm: built without a gradient buffer");
  NoGradGuard ng;
  return sqrt(sum(square(grad_)));
}

void FlatParameters::scale_grad(double factor) {
  SAGAN_CHECK(grad_.defined(), "FlatParameters::scale_grad: built without a gradient buffer");
  NoGradGuard ng;
  grad_.copy_(mul(grad_, factor));
}

void FlatParameters::scale_grad(const Tensor& factor) {
  SAGAN_CHECK(grad_.defined(), "FlatParameters::scale_grad: built without a gradient buffer");
  SAGAN_CHECK(factor.numel() == 1, "FlatParameters::scale_grad: the factor must have one element, got shape {}",
              shape_str(factor.shape()));
  NoGradGuard ng;
  grad_.copy_(mul(grad_, factor.detach().reshape({})));
}

bool FlatParameters::same_layout(const FlatParameters& o) const {
  if (size() != o.size() || dtype() != o.dtype() || ranges_.size() != o.ranges_.size()) return false;
  for (size_t i = 0; i < ranges_.size(); ++i) {
    const ParamRange &a = ranges_[i], &b = o.ranges_[i];
    if (a.name != b.name || a.shape != b.shape || a.offset != b.offset || a.numel != b.numel) return false;
  }
  return true;
}

FlatParameters FlatParameters::to(Device device) const {
  NoGradGuard ng;
  return FlatParameters(*this, data_.to(device));
}

FlatParameters FlatParameters::to(DType dtype) const {
  SAGAN_CHECK(is_floating(dtype), "FlatParameters::to: parameters are floating, got {}", dtype_name(dtype));
  NoGradGuard ng;
  return FlatParameters(*this, data_.to(dtype));
}

void FlatParameters::set_grad_ready_hook(ReadyHook hook) {
  SAGAN_CHECK(!hook || grad_.defined(), "FlatParameters::set_grad_ready_hook: built without a gradient buffer");
  hook_ = hook ? std::make_shared<const ReadyHook>(std::move(hook)) : nullptr;
  attach_hook();
}

void FlatParameters::attach_hook() {
  if (!grad_.defined()) return;
  for (size_t i = 0; i < params_.size(); ++i) {
    GradSlot& slot = *params_[i].impl()->grad_slot;
    if (hook_)
      slot.on_ready = [hook = hook_, range = ranges_[i]] { (*hook)(range); };
    else
      slot.on_ready = nullptr;
  }
}

}  // namespace sagan::nn
