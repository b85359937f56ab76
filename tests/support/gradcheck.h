// Finite-difference gradient checks in float64: the analytical gradient of
// L = sum(w * f(inputs)), w a fixed random tensor, against central
// differences, element by element.
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sagan/core/ops.h"
#include "sagan/core/rng.h"

namespace sagan::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckResult {
  bool ok = true;
  double max_rel_error = 0.0;
  std::string message;  // the worst element, for the test log
};

// inputs must be float64; those with requires_grad are checked. The relative
// error of an element is |analytic - numeric| / max(1, |analytic|, |numeric|).
GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps = 1e-6, double tol = 1e-6,
                          uint64_t seed = 1234);

// float64 CPU tensor of the given shape, N(0,1) (or uniform in [lo, hi)).
Tensor randn64(const Shape& shape, Rng& gen, bool requires_grad = true);
Tensor uniform64(const Shape& shape, double lo, double hi, Rng& gen, bool requires_grad = true);

// max |a - b| / (atol + rtol |b|) <= 1; message names the worst element.
struct CloseResult {
  bool ok = true;
  double worst = 0.0;
  std::string message;
};
CloseResult allclose(const Tensor& a, const Tensor& b, double rtol, double atol);
CloseResult allclose(const Tensor& a, const std::vector<double>& b, double rtol, double atol);

// For running worst errors: the larger of m and e, and NaN from the first
// NaN on. std::max(m, NaN) returns m, which lets a NaN result pass a bound.
inline double max_keep_nan(double m, double e) {
  if (std::isnan(m)) return m;
  return std::isnan(e) || e > m ? e : m;
}

}  // namespace sagan::testing
