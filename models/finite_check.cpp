#include "sagan/models/finite_check.h"

#include <cmath>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"

namespace sagan {

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0 || !is_floating(t.dtype())) return true;
  NoGradGuard ng;
  return std::isfinite(sum(mul(t, 0.0)).item());
}

std::optional<std::string> first_non_finite(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors)
    if (!all_finite(t)) return name;
  return std::nullopt;
}

}  // namespace sagan
