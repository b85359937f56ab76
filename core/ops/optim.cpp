// Optimiser update front ends: validate every tensor of the call (messages
// name the op and the index of the offending tensor), then hand the whole
// list to one backend call. Updates are in place and never recorded.
#include <cmath>
#include <string>

#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;

namespace {

// t must match ref in dtype and device (and shape when asked); `what` names
// the list.
void check_like(const char* op, const char* what, size_t i, const Tensor& t, const Tensor& ref,
                bool same_shape = true) {
  SAGAN_CHECK(t.defined(), "{}: {}[{}] is an undefined tensor", op, what, i);
  SAGAN_CHECK(!same_shape || t.shape() == ref.shape(), "{}: {}[{}] has shape {}, expected {}", op, what, i,
              shape_str(t.shape()), shape_str(ref.shape()));
  SAGAN_CHECK(t.dtype() == ref.dtype(), "{}: {}[{}] {} is {}, expected {}", op, what, i, shape_str(t.shape()),
              dtype_name(t.dtype()), dtype_name(ref.dtype()));
  SAGAN_CHECK(t.device() == ref.device(), "{}: {}[{}] {} is on {}, expected {}", op, what, i, shape_str(t.shape()),
              device_name(t.device()), device_name(ref.device()));
}

// A tensor written in place: contiguous (the kernels' flat loops) and not
// part of a graph (a leaf, so no recorded op saw the old values).
void check_target(const char* op, const char* what, size_t i, const Tensor& t) {
  SAGAN_CHECK(t.is_contiguous(), "{}: {}[{}] {} must be contiguous (it is updated in place)", op, what, i,
              shape_str(t.shape()));
  SAGAN_CHECK(t.is_leaf(), "{}: {}[{}] {} is not a leaf tensor; in-place updates apply to parameters", op, what, i,
              shape_str(t.shape()));
}

// The first list's element 0 sets dtype and device for the whole call.
void check_reference(const char* op, const char* what, const Tensor& ref) {
  SAGAN_CHECK(ref.defined(), "{}: {}[0] is an undefined tensor", op, what);
  SAGAN_CHECK(is_floating(ref.dtype()), "{}: {}[0] {} must be floating, got {}", op, what, shape_str(ref.shape()),
              dtype_name(ref.dtype()));
}

// An update gate: undefined, or one element of ref's dtype on its device.
void check_gate(const char* op, const Tensor& gate, const Tensor& ref) {
  if (!gate.defined()) return;
  SAGAN_CHECK(gate.numel() == 1, "{}: gate must have one element, got shape {}", op, shape_str(gate.shape()));
  SAGAN_CHECK(gate.dtype() == ref.dtype() && gate.device() == ref.device(),
              "{}: gate is {} on {}, expected {} on {} like the tensors it gates", op, dtype_name(gate.dtype()),
              device_name(gate.device()), dtype_name(ref.dtype()), device_name(ref.device()));
}

// An optional kernel argument (gate, scales): absent when undefined.
std::optional<Tensor> optional_arg(const Tensor& t) { return t.defined() ? std::optional<Tensor>(t) : std::nullopt; }

}  // namespace

AdamScales adam_scales(const AdamOptions& o, int64_t step) {
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  return {o.lr / bc1, std::sqrt(bc2)};
}

void adam_update(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                 std::vector<Tensor>& v, const AdamHyper& h, const Tensor& gate, const Tensor& scales) {
  const char* op = "adam_update";
  SAGAN_CHECK(grads.size() == params.size() && m.size() == params.size() && v.size() == params.size(),
              "adam_update: list lengths differ, {} params, {} grads, {} m, {} v", params.size(), grads.size(),
              m.size(), v.size());
  SAGAN_CHECK(h.step >= 1, "adam_update: step is 1-based, got {}", h.step);
  SAGAN_CHECK(h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1,
              "adam_update: betas must lie in [0, 1), got ({}, {})", h.beta1, h.beta2);
  SAGAN_CHECK(h.eps >= 0 && std::isfinite(h.lr) && h.lr >= 0,
              "adam_update: need lr >= 0 and eps >= 0, got lr {} eps {}", h.lr, h.eps);
  if (params.empty()) return;
  check_reference(op, "params", params[0]);
  const Tensor& ref = params[0];
  for (size_t i = 0; i < params.size(); ++i) {
    check_like(op, "params", i, params[i], ref, false);
    check_like(op, "grads", i, grads[i], params[i]);
    check_like(op, "m", i, m[i], params[i]);
    check_like(op, "v", i, v[i], params[i]);
    check_target(op, "params", i, params[i]);
    check_target(op, "m", i, m[i]);
    check_target(op, "v", i, v[i]);
  }
  check_gate(op, gate, ref);
  if (scales.defined())
    SAGAN_CHECK(scales.numel() == 2 && scales.is_contiguous() && scales.dtype() == ref.dtype() &&
                    scales.device() == ref.device(),
                "adam_update: scales must be 2 contiguous elements of {} on {}, got shape {} of {} on {}",
                dtype_name(ref.dtype()), device_name(ref.device()), shape_str(scales.shape()),
                dtype_name(scales.dtype()), device_name(scales.device()));
  NoGradGuard ng;
  backend_of(ref).adam_update(params, grads, m, v, h, optional_arg(gate), optional_arg(scales));
  for (std::vector<Tensor>* list : {&params, &m, &v})
    for (const Tensor& t : *list) t.bump_version();  // a graph that saved them refuses to backpropagate
}

void ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double decay, const Tensor& gate) {
  const char* op = "ema_update";
  SAGAN_CHECK(ema.size() == params.size(), "ema_update: list lengths differ, {} ema, {} params", ema.size(),
              params.size());
  SAGAN_CHECK(decay >= 0 && decay <= 1, "ema_update: decay must lie in [0, 1], got {}", decay);
  if (ema.empty()) return;
  check_reference(op, "ema", ema[0]);
  const Tensor& ref = ema[0];
  for (size_t i = 0; i < ema.size(); ++i) {
    check_like(op, "ema", i, ema[i], ref, false);
    check_like(op, "params", i, params[i], ema[i]);
    check_target(op, "ema", i, ema[i]);
  }
  check_gate(op, gate, ref);
  NoGradGuard ng;
  backend_of(ref).ema_update(ema, params, decay, optional_arg(gate));
  for (const Tensor& t : ema) t.bump_version();
}

}  // namespace sagan
