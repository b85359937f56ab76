// Finiteness checks for the NaN guard (models/nan_guard.h) and for
// checkpoints (models/checkpoint_file.h): a diverged run must neither keep
// training silently nor write, nor be resumed or sampled from, NaN weights.
#pragma once
#include <optional>
#include <string>

#include "sagan/core/tensor.h"

namespace sagan {

// True when every element of a floating tensor is finite (integer tensors
// always are): one elementwise op and one reduction, sum(t * 0), which is 0
// for finite values and NaN as soon as one is NaN or infinite, whatever the
// magnitudes (a plain sum could overflow). One host sync.
bool all_finite(const Tensor& t);

// The name of the first tensor in `tensors` holding a NaN or an infinity.
std::optional<std::string> first_non_finite(const NamedTensors& tensors);

}  // namespace sagan
