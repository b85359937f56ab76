#include "sagan/layers/adam.h"

#include <cmath>
#include <set>

#include "sagan/core/ops.h"
#include "sagan/layers/flat_parameters.h"

namespace sagan::nn {

Adam::Adam(const Module& module, AdamOptions options) : opt_(options) {
  flat_ = module.flat_parameters();
  params_ = flat_ ? flat_->named_params() : module.named_parameters();
  init_moments();
}

Adam::Adam(NamedTensors params, AdamOptions options) : params_(std::move(params)), opt_(options) { init_moments(); }

void Adam::init_moments() {
  SAGAN_CHECK(opt_.lr >= 0 && opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1 && opt_.eps > 0,
              "Adam: invalid options lr {}, beta1 {}, beta2 {}, eps {}", opt_.lr, opt_.beta1, opt_.beta2, opt_.eps);
  std::set<std::string> seen;
  std::map<const TensorImpl*, std::string> tensors;  // the same tensor under two names would be updated twice
  for (auto& [name, p] : params_) {
    SAGAN_CHECK(p.defined() && p.requires_grad() && p.is_leaf(), "Adam: parameter '{}' must be a leaf requiring grad",
                name);
    SAGAN_CHECK(seen.insert(name).second, "Adam: parameter '{}' given twice", name);
    auto [it, fresh] = tensors.emplace(p.impl(), name);
    SAGAN_CHECK(fresh, "Adam: parameters '{}' and '{}' are the same tensor", it->second, name);
  }
  if (flat_ && flat_->has_grad_buffer()) {
    flat_m_ = Tensor::zeros({flat_->size()}, flat_->dtype(), flat_->device());
    flat_v_ = Tensor::zeros({flat_->size()}, flat_->dtype(), flat_->device());
    m_ = flat_->views_of(flat_m_);
    v_ = flat_->views_of(flat_v_);
    return;
  }
  flat_.reset();  // without a gradient buffer there is nothing flat to update
  for (auto& [name, p] : params_) {
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
}

void Adam::step() {
  // No gradient anywhere is a mistake, never a step to count: most often the
  // module was converted (to()) or flattened after this optimiser was built,
  // so the parameters that get gradients are not the ones held here.
  bool any_grad = params_.empty() || (flat_ && flat_->all_have_grad());
  for (size_t i = 0; i < params_.size() && !any_grad; ++i) any_grad = params_[i].second.grad().defined();
  SAGAN_CHECK(any_grad,
              "Adam::step: none of its {} parameters has a gradient: call backward() first, and build the optimiser "
              "after Module::to() and flatten_parameters(), which replace the parameter tensors it holds",
              params_.size());
  ++step_;
  update(AdamHyper{opt_, step_}, Tensor(), Tensor());
}

void Adam::step_on_device(const Tensor& gate, const Tensor& scales) {
  SAGAN_CHECK(scales.defined(), "Adam::step_on_device: no scales");
  update(AdamHyper{opt_, step_ + 1}, gate, scales);  // h.step only passes the front end's check
}

void Adam::count_steps(int64_t made) {
  SAGAN_CHECK(made >= 0, "Adam::count_steps: {} updates", made);
  step_ += made;
}

void Adam::update(const AdamHyper& h, const Tensor& gate, const Tensor& scales) {
  launches_ = {};
  if (flat_ && flat_->all_have_grad()) {
    // The padding between parameters has zero gradient and zero moments, so
    // it stays zero.
    std::vector<Tensor> ps{flat_->data()}, gs{flat_->grad()}, ms{flat_m_}, vs{flat_v_};
    adam_update(ps, gs, ms, vs, h, gate, scales);
    launches_ = {1, 1};
    return;
  }
  // Group by (device, dtype): one backend call each.
  std::vector<bool> done(params_.size(), false);
  for (size_t first = 0; first < params_.size(); ++first) {
    if (done[first]) continue;
    std::vector<Tensor> ps, gs, ms, vs;
    const Tensor& p0 = params_[first].second;
    for (size_t i = first; i < params_.size(); ++i) {
      const Tensor& p = params_[i].second;
      if (done[i] || p.device() != p0.device() || p.dtype() != p0.dtype()) continue;
      done[i] = true;
      Tensor g = p.grad();
      if (!g.defined()) continue;
      ps.push_back(p.detach());
      gs.push_back(g);
      ms.push_back(m_[i]);
      vs.push_back(v_[i]);
    }
    if (ps.empty()) continue;
    adam_update(ps, gs, ms, vs, h, gate, scales);
    launches_.calls++;
    launches_.tensors += static_cast<int64_t>(ps.size());
  }
}

void Adam::zero_grad() {
  if (flat_) {
    flat_->zero_grad();
    return;
  }
  for (auto& [name, p] : params_) p.set_grad(Tensor());
}

std::map<std::string, Tensor> Adam::state() const {
  std::map<std::string, Tensor> out;
  out.emplace("step", Tensor::scalar(static_cast<double>(step_), DType::I64));
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace("exp_avg." + params_[i].first, m_[i]);
    out.emplace("exp_avg_sq." + params_[i].first, v_[i]);
  }
  return out;
}

std::vector<Tensor> Adam::moment_buffers() const {
  if (flat_) return {flat_m_, flat_v_};
  std::vector<Tensor> out = m_;
  out.insert(out.end(), v_.begin(), v_.end());
  return out;
}

void Adam::load_state(const std::map<std::string, Tensor>& state) {
  auto find = [&](const std::string& key, const Shape& shape) -> const Tensor& {
    auto it = state.find(key);
    SAGAN_CHECK(it != state.end(), "Adam::load_state: missing tensor '{}'", key);
    SAGAN_CHECK(it->second.defined() && it->second.shape() == shape,
                "Adam::load_state: tensor '{}' has shape {}, expected {}", key,
                it->second.defined() ? shape_str(it->second.shape()) : std::string("undefined"), shape_str(shape));
    return it->second;
  };
  const Tensor& step = find("step", {});
  for (size_t i = 0; i < params_.size(); ++i) {
    find("exp_avg." + params_[i].first, m_[i].shape());
    find("exp_avg_sq." + params_[i].first, v_[i].shape());
  }
  std::set<std::string> known{"step"};
  for (auto& [name, p] : params_) {
    known.insert("exp_avg." + name);
    known.insert("exp_avg_sq." + name);
  }
  for (auto& [key, t] : state) SAGAN_CHECK(known.count(key), "Adam::load_state: unexpected tensor '{}'", key);
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(state.at("exp_avg." + params_[i].first));
    v_[i].copy_(state.at("exp_avg_sq." + params_[i].first));
  }
  const double s = step.item();
  SAGAN_CHECK(s >= 0 && s == std::floor(s) && s < 9.0e15,
              "Adam::load_state: tensor 'step' holds {}, expected a count >= 0", s);
  step_ = static_cast<int64_t>(s);
}

}  // namespace sagan::nn
