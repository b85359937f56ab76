#include "sagan/layers/init.h"

#include <cmath>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"

namespace sagan::nn {

Tensor xavier_uniform(const Shape& shape, Rng& gen, DType dtype) {
  SAGAN_CHECK(shape.size() >= 2, "xavier_uniform: needs at least 2 dims, got shape {}", shape_str(shape));
  int64_t field = 1;
  for (size_t i = 2; i < shape.size(); ++i) field *= shape[i];
  double fan_in = static_cast<double>(shape[1] * field), fan_out = static_cast<double>(shape[0] * field);
  double bound = std::sqrt(6.0 / (fan_in + fan_out));
  NoGradGuard ng;
  Tensor u = Tensor::rand(shape, gen, DType::F64);
  return add(mul(u, 2.0 * bound), -bound).to(dtype);
}

Tensor random_unit_vector(int64_t n, Rng& gen, DType dtype) {
  SAGAN_CHECK(n > 0, "random_unit_vector: length must be positive, got {}", n);
  std::vector<double> v(static_cast<size_t>(n));
  double norm2 = 0.0;
  for (double& x : v) {
    x = gen.normal();
    norm2 += x * x;
  }
  // Same eps as the spectral-norm normalisation.
  double s = 1.0 / std::max(std::sqrt(norm2), 1e-12);
  for (double& x : v) x *= s;
  return Tensor::from_vector(v, {n}, dtype);
}

}  // namespace sagan::nn
