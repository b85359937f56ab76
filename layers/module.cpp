#include "sagan/layers/module.h"

#include <set>

#include "sagan/core/autograd.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/layers/spectral_norm.h"

namespace sagan::nn {

namespace {
Tensor as_leaf_param(Tensor t) {
  t = t.detach();
  t.set_requires_grad(true);
  return t;
}

// A child's name may itself hold dots ("blocks.0"), so match whole prefixes.
bool strip_prefix(const std::string& dotted, const std::string& prefix, std::string& rest) {
  if (dotted.size() <= prefix.size() + 1 || dotted.compare(0, prefix.size(), prefix) != 0 ||
      dotted[prefix.size()] != '.')
    return false;
  rest = dotted.substr(prefix.size() + 1);
  return true;
}
}  // namespace

void Module::check_not_flat(const char* what, const std::string& name) const {
  SAGAN_CHECK(flat_root_ == nullptr,
              "{}: cannot {} '{}': the parameters are already in a flat buffer "
              "(flatten_parameters); register everything first",
              type_name(), what, name);
}

void Module::register_parameter(const std::string& name, Tensor t) {
  check_not_flat("register parameter", name);
  SAGAN_CHECK(t.defined(), "{}: parameter '{}' is undefined", type_name(), name);
  SAGAN_CHECK(!find_local(name), "{}: tensor '{}' registered twice", type_name(), name);
  params_.emplace_back(name, as_leaf_param(std::move(t)));
}

void Module::register_buffer(const std::string& name, Tensor t) {
  SAGAN_CHECK(t.defined(), "{}: buffer '{}' is undefined", type_name(), name);
  SAGAN_CHECK(!find_local(name), "{}: tensor '{}' registered twice", type_name(), name);
  buffers_.emplace_back(name, t.detach());
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_not_flat("register child module", name);
  SAGAN_CHECK(m != nullptr, "{}: child module '{}' is null", type_name(), name);
  SAGAN_CHECK(m->flat_root_ == nullptr,
              "{}: child module '{}' has flat parameters already; flatten the whole model "
              "once it is built",
              type_name(), name);
  for (auto& [n, c] : children_) SAGAN_CHECK(n != name, "{}: child module '{}' registered twice", type_name(), name);
  m->train(training_);
  children_.emplace_back(name, std::move(m));
}

Tensor* Module::find_local(const std::string& name) {
  for (auto* list : {&params_, &buffers_})
    for (auto& [n, t] : *list)
      if (n == name) return &t;
  return nullptr;
}

Tensor* Module::find(const std::string& dotted) {
  if (Tensor* t = find_local(dotted)) return t;
  std::string rest;
  for (auto& [n, c] : children_)
    if (strip_prefix(dotted, n, rest))
      if (Tensor* t = c->find(rest)) return t;
  return nullptr;
}

Tensor Module::param(const std::string& name) const {
  for (auto& [n, t] : params_)
    if (n == name) return t;
  SAGAN_FAIL("{}: no parameter '{}'", type_name(), name);
}

Tensor Module::buffer(const std::string& name) const {
  for (auto& [n, t] : buffers_)
    if (n == name) return t;
  SAGAN_FAIL("{}: no buffer '{}'", type_name(), name);
}

bool Module::has_param(const std::string& name) const {
  for (auto& [n, t] : params_)
    if (n == name) return true;
  return false;
}

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", params, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

std::vector<Module*> Module::modules() {
  std::vector<Module*> out{this};
  for (auto& [n, c] : children_) {
    auto sub = c->modules();
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<SpectralNormed*> Module::spectral_norm_layers() {
  std::vector<SpectralNormed*> out;
  for (Module* sub : modules())
    if (auto* sn = dynamic_cast<SpectralNormed*>(sub)) out.push_back(sn);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [n, c] : children_) out.emplace_back(n, c.get());
  return out;
}

std::map<std::string, Tensor> Module::state() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : named_parameters()) out.emplace(n, t);
  for (auto& [n, t] : named_buffers()) out.emplace(n, t);
  return out;
}

void Module::load_state(const std::map<std::string, Tensor>& src) {
  auto mine = state();
  // Check everything before copying anything, so a bad file leaves the
  // module untouched.
  for (auto& [name, t] : mine) {
    auto it = src.find(name);
    SAGAN_CHECK(it != src.end(), "load_state: missing tensor '{}' (shape {})", name, shape_str(t.shape()));
    SAGAN_CHECK(it->second.defined() && it->second.shape() == t.shape(),
                "load_state: tensor '{}' has shape {}, expected {}", name,
                it->second.defined() ? shape_str(it->second.shape()) : std::string("undefined"), shape_str(t.shape()));
  }
  for (auto& [name, t] : src)
    SAGAN_CHECK(mine.count(name), "load_state: unexpected tensor '{}' (shape {}) not in the module", name,
                t.defined() ? shape_str(t.shape()) : std::string("undefined"));
  NoGradGuard ng;
  for (auto& [name, t] : mine) t.copy_(src.at(name));
}

void Module::set_tensor(const std::string& name, const Tensor& t) {
  Tensor* slot = find(name);
  SAGAN_CHECK(slot != nullptr, "set_tensor: no tensor '{}'", name);
  if (flat_root_)
    for (auto& [n, p] : named_parameters())
      SAGAN_CHECK(n != name,
                  "set_tensor: parameter '{}' lives in a flat parameter buffer (flatten_parameters); "
                  "copy values in with load_state",
                  name);
  SAGAN_CHECK(t.defined() && t.shape() == slot->shape(), "set_tensor: tensor '{}' has shape {}, expected {}", name,
              t.defined() ? shape_str(t.shape()) : std::string("undefined"), shape_str(slot->shape()));
  *slot = t;
}

Tensor Module::tensor(const std::string& name) const {
  Tensor* slot = const_cast<Module*>(this)->find(name);
  SAGAN_CHECK(slot != nullptr, "tensor: no tensor '{}'", name);
  return *slot;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  if (flat_) {
    flat_->zero_grad();
    return;
  }
  for (auto& [n, t] : named_parameters()) t.set_grad(Tensor());
}

// Every parameter slot of the subtree in named_parameters() order.
template <class F>
void Module::for_each_param_slot(F&& f) {
  for (auto& [n, t] : params_) f(t);
  for (auto& [n, c] : children_) c->for_each_param_slot(f);
}

void Module::bind_flat_parameters() {
  const std::vector<Tensor>& views = flat_->params();
  size_t i = 0;
  for_each_param_slot([&](Tensor& t) {
    SAGAN_CHECK(i < views.size(), "{}: more parameters than its flat buffer holds", type_name());
    t = views[i++];
  });
  SAGAN_CHECK(i == views.size(), "{}: {} parameters, its flat buffer holds {}", type_name(), i, views.size());
}

void Module::flatten_parameters(bool with_grad) {
  SAGAN_CHECK(flat_root_ == nullptr || flat_root_ == this,
              "{}: flatten_parameters on a part of a model whose parameters are flat in an enclosing module",
              type_name());
  auto flat = std::make_shared<FlatParameters>(named_parameters(), with_grad);
  for (Module* m : modules()) {
    m->flat_.reset();
    m->flat_root_ = this;
  }
  flat_ = std::move(flat);
  bind_flat_parameters();
}

// f converts one tensor; flat_f converts a FlatParameters (or returns null
// to keep it as it is).
template <class F, class FlatF>
void Module::convert_tensors(F&& f, FlatF&& flat_f) {
  SAGAN_CHECK(flat_root_ == nullptr || flat_root_ == this,
              "{}: to() on a part of a model whose parameters are flat in an enclosing module; call it on that module",
              type_name());
  NoGradGuard ng;
  if (flat_) {
    if (auto moved = flat_f(*flat_)) {
      flat_ = std::move(moved);
      bind_flat_parameters();
    }
    for (Module* m : modules())
      for (auto& [n, t] : m->buffers_)
        if (Tensor c = f(t); !c.same(t)) t = c.detach();
    return;
  }
  // A tensor that needs no conversion stays the same tensor: an optimiser
  // built earlier keeps updating it, and its gradient stays.
  for (auto& [n, t] : params_)
    if (Tensor c = f(t); !c.same(t)) t = as_leaf_param(c);
  for (auto& [n, t] : buffers_)
    if (Tensor c = f(t); !c.same(t)) t = c.detach();
  for (auto& [n, c] : children_) c->convert_tensors(f, flat_f);
}

void Module::to(Device device) {
  convert_tensors([device](const Tensor& t) { return t.to(device); },
                  [device](const FlatParameters& fp) {
                    return fp.device() == device ? nullptr : std::make_shared<FlatParameters>(fp.to(device));
                  });
}

void Module::to(DType dtype) {
  convert_tensors([dtype](const Tensor& t) { return is_floating(t.dtype()) ? t.to(dtype) : t; },
                  [dtype](const FlatParameters& fp) {
                    return fp.dtype() == dtype ? nullptr : std::make_shared<FlatParameters>(fp.to(dtype));
                  });
}

}  // namespace sagan::nn
