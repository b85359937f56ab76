// Module: the base of every layer and model. It owns named parameters
// (trainable leaves) and buffers (persistent state such as running statistics
// and spectral-norm vectors), and child modules, so that a whole model can be
// enumerated with dotted names ("blocks.0.conv1.weight_orig") that match the
// PyTorch reference (tests/golden/sagan_reference.py) for checkpoint interop.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::nn {

class FlatParameters;
class SpectralNormed;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Recursive, in registration order, dotted names.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // This module and every descendant, depth first (this first).
  std::vector<Module*> modules();
  std::vector<std::pair<std::string, Module*>> named_children() const;
  // The spectrally normalised layers of this subtree, depth first, so that
  // their power iterations can run as one batched call (power_iterate_all in
  // layers/spectral_norm.h).
  std::vector<SpectralNormed*> spectral_norm_layers();

  // Parameters and buffers by dotted name; tensors share storage with the
  // module (a snapshot needs clone()).
  std::map<std::string, Tensor> state() const;
  // Copies values in place (converting dtype and device). Every tensor of the
  // module must be present with its shape and no unknown name may appear;
  // errors name the tensor.
  void load_state(const std::map<std::string, Tensor>& state);
  // Replaces the handle of one tensor by dotted name (no copy): for gradient
  // checks and for swapping in weights such as an EMA copy. Shape must match.
  void set_tensor(const std::string& name, const Tensor& t);
  Tensor tensor(const std::string& name) const;  // parameter or buffer by dotted name

  // Training mode (batch statistics, power iterations) for the whole subtree.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad();
  // Moves / converts every parameter and buffer; parameters stay leaves that
  // require grad (and inside the flat buffer, when flattened). Optimisers
  // built before this keep the old tensors. On a flattened model, call it
  // on the module that was flattened, not on a part of it.
  void to(Device device);
  void to(DType dtype);

  // Puts every parameter of this subtree into one FlatParameters
  // (layers/flat_parameters.h): values are kept, each parameter becomes a
  // view of one buffer and, with_grad, its gradient a view of another.
  // to() and load_state() keep them there. Afterwards registering
  // parameters or children anywhere in the subtree, set_tensor() of a
  // parameter and to() on a part of the subtree are refused. Calling it
  // again (on the same module) rebuilds the buffers.
  void flatten_parameters(bool with_grad = true);
  // The buffers after flatten_parameters() on this module; null otherwise.
  const std::shared_ptr<FlatParameters>& flat_parameters() const { return flat_; }

 protected:
  // Registration, meant for constructors. Parameters become leaves that
  // require grad; names are local (no dots).
  void register_parameter(const std::string& name, Tensor t);
  void register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Local lookups (throw naming the module's tensor when absent).
  Tensor param(const std::string& name) const;
  Tensor buffer(const std::string& name) const;
  bool has_param(const std::string& name) const;
  // Type name for error messages ("SNConv2d").
  virtual const char* type_name() const { return "Module"; }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;
  Tensor* find_local(const std::string& name);
  Tensor* find(const std::string& dotted);
  template <class F, class FlatF>
  void convert_tensors(F&& f, FlatF&& flat_f);
  template <class F>
  void for_each_param_slot(F&& f);
  void bind_flat_parameters();
  void check_not_flat(const char* what, const std::string& name) const;

  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::shared_ptr<FlatParameters> flat_;  // set on the module that was flattened
  const Module* flat_root_ = nullptr;     // that module, for every module of its subtree
};

}  // namespace sagan::nn
