// Adam over a module's named parameters with one adam_update call per step
// (per dtype/device group, normally one), so a GPU backend updates every
// tensor in a single launch. Bias correction uses one step count for the
// whole optimiser; parameters without a gradient in a step are skipped but
// the count still advances (SAGAN gives every parameter a gradient).
// State for checkpoints: "step" (int64 scalar), "exp_avg.<param>",
// "exp_avg_sq.<param>" (PyTorch's names for m and v).
#pragma once
#include <map>
#include <string>

#include "core/adam_options.h"
#include "core/backend.h"
#include "layers/module.h"

namespace sagan::nn {

class Adam {
 public:
  // Parameters as given (e.g. module.named_parameters()); m and v start at
  // zero on each parameter's device and dtype.
  Adam(NamedTensors params, AdamOptions options);
  void step();
  void zero_grad();
  int64_t step_count() const { return step_; }
  AdamOptions& options() { return opt_; }
  const AdamOptions& options() const { return opt_; }
  const NamedTensors& params() const { return params_; }

  std::map<std::string, Tensor> state() const;
  // Every entry must be present with the parameter's shape; copies values.
  void load_state(const std::map<std::string, Tensor>& state);

 private:
  NamedTensors params_;
  std::vector<Tensor> m_, v_;
  AdamOptions opt_;
  int64_t step_ = 0;
};

}  // namespace sagan::nn
