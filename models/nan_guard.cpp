#include "sagan/models/nan_guard.h"

#include <cmath>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"
#include "sagan/models/finite_check.h"

namespace sagan {

NanGuard::NanGuard(std::string policy, int64_t max_skips_in_a_row)
    : policy_(std::move(policy)), max_skips_(max_skips_in_a_row) {
  SAGAN_CHECK(policy_ == "stop" || policy_ == "skip", "--on-nan: '{}' is not one of stop, skip", policy_);
  SAGAN_CHECK(max_skips_ > 0, "--max-nan-skips: must be positive, got {}", max_skips_);
}

std::string first_non_finite_tensor(const NanGuard::Networks& nets) {
  for (const auto& [net, model] : nets) {
    for (const auto& [name, p] : model->named_parameters())
      if (!all_finite(p)) return "parameter " + net + "." + name;
    for (const auto& [name, b] : model->named_buffers())
      if (!all_finite(b)) return "buffer " + net + "." + name;
  }
  if (nets.empty()) return "";
  const NamedTensors params = nets[0].second->named_parameters();
  for (const auto& [name, p] : params)
    if (p.grad().defined() && !all_finite(p.grad())) return "gradient of " + nets[0].first + "." + name;
  // Finite elements whose squares overflow: the norm is infinite.
  NoGradGuard ng;
  for (const auto& [name, p] : params)
    if (p.grad().defined() && !std::isfinite(sum(square(p.grad())).item()))
      return "gradient of " + nets[0].first + "." + name + " (its norm overflows)";
  return "";
}

bool NanGuard::check(int64_t step, const std::vector<std::pair<std::string, double>>& values, const Networks& nets,
                     bool elsewhere) {
  std::string bad;
  for (const auto& [name, v] : values)
    if (!std::isfinite(v)) bad += fmt::format("{}{} = {}", bad.empty() ? "" : ", ", name, v);
  if (bad.empty() && !elsewhere) return true;
  if (bad.empty()) {
    message_ = fmt::format("step {}: {}'s update is not finite on {} (this rank's values are finite)", step,
                           nets.at(0).first, ranks_.empty() ? std::string("another rank") : ranks_);
  } else {
    // Only now, on the way out, is each tensor looked at by itself.
    const std::string tensor = first_non_finite_tensor(nets);
    message_ = fmt::format("step {}: {}'s update is not finite ({}); first non-finite tensor: {}", step,
                           nets.at(0).first, bad, tensor.empty() ? "none (the values overflowed)" : tensor);
    if (!ranks_.empty() && !ranks_include_this_)
      message_ += fmt::format(" (non-finite first on {}: its gradients reached this rank's through the all-reduce)",
                              ranks_);
  }
  if (policy_ == "stop")
    SAGAN_FAIL(
        "{} (--on-nan stop: training stopped; the checkpoints written so far are kept; "
        "--on-nan skip drops such updates)",
        message_);
  if (in_a_row_ + 1 >= max_skips_)
    SAGAN_FAIL("{} (--on-nan skip: {} iterations in a row were not finite, --max-nan-skips {}: training stopped)",
               message_, in_a_row_ + 1, max_skips_);
  return false;
}

void NanGuard::end_iteration(bool skipped) {
  if (skipped) {
    ++skipped_total_;
    ++in_a_row_;
  } else {
    in_a_row_ = 0;
  }
}

}  // namespace sagan
