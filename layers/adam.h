// Adam with one adam_update call per step. Over a module whose parameters
// are flat (Module::flatten_parameters, layers/flat_parameters.h) the moments
// m and v are flat buffers of the same layout, and a step in which every
// parameter has a gradient is one call over the three whole buffers
// (parameters, gradients, m, v: one tensor each). Otherwise (a plain list of
// tensors, or a step where some parameter got no gradient) the call gets one
// tensor per parameter, grouped by dtype and device (normally one group).
// Bias correction uses one step count for the whole optimiser; parameters
// without a gradient in a step are skipped but the count still advances
// (SAGAN gives every parameter a gradient).
// State for checkpoints, per parameter whatever the memory layout: "step"
// (int64 scalar), "exp_avg.<param>", "exp_avg_sq.<param>" (PyTorch's names for
// m and v).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "sagan/core/adam_options.h"
#include "sagan/core/backend.h"
#include "sagan/layers/module.h"

namespace sagan::nn {

class Adam {
 public:
  // The module's parameters (flat when the module was flattened); m and v
  // start at zero on the parameters' device and dtype.
  Adam(const Module& module, AdamOptions options);
  // Parameters as given (e.g. module.named_parameters()).
  Adam(NamedTensors params, AdamOptions options);
  // One update, counted.
  void step();
  // One update decided on the device (core/sync_free.h), not counted: held
  // back when `gate` holds NaN (core/ops.h adam_update), its bias-corrected
  // factors read from `scales`, two elements of the parameters' dtype on
  // their device holding adam_scales(options(), n) for update number n (the
  // caller fills them; a replayed CUDA graph reads new ones each time).
  // Once the caller has read the gate it counts the updates made with
  // count_steps(), which bias correction and checkpoints go by.
  void step_on_device(const Tensor& gate, const Tensor& scales);
  void count_steps(int64_t made);
  void zero_grad();
  int64_t step_count() const { return step_; }
  AdamOptions& options() { return opt_; }
  const AdamOptions& options() const { return opt_; }
  const NamedTensors& params() const { return params_; }

  // The backend calls of the last step() and the tensors in each list
  // (1 and 1 on flat parameters).
  struct Launches {
    int64_t calls = 0, tensors = 0;
  };
  const Launches& last_step_launches() const { return launches_; }

  std::map<std::string, Tensor> state() const;
  // The moments as few tensors as they are stored in: the two flat buffers
  // on flat parameters, else one tensor each (whole-state checks).
  std::vector<Tensor> moment_buffers() const;
  // Every entry must be present with the parameter's shape; copies values.
  void load_state(const std::map<std::string, Tensor>& state);

 private:
  void init_moments();
  void update(const AdamHyper& h, const Tensor& gate, const Tensor& scales);

  NamedTensors params_;
  std::shared_ptr<FlatParameters> flat_;  // when the parameters are flat
  Tensor flat_m_, flat_v_;                // then m_ and v_ are views of these
  std::vector<Tensor> m_, v_;
  AdamOptions opt_;
  int64_t step_ = 0;
  Launches launches_;
};

}  // namespace sagan::nn
