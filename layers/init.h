// Weight initialisation, seeded and deterministic (sagan::Rng). The
// official SAGAN code initialises every conv, linear and the projection
// embedding xavier-uniform and biases with zeros; spectral-norm vectors start
// as normalised N(0, 1) draws, as torch.nn.utils.spectral_norm does.
#pragma once
#include "sagan/core/rng.h"
#include "sagan/core/tensor.h"

namespace sagan::nn {

// U(-b, b), b = sqrt(6 / (fan_in + fan_out)); fans as PyTorch computes them:
// dim 1 times the receptive field (fan_in) and dim 0 times it (fan_out).
Tensor xavier_uniform(const Shape& shape, Rng& gen, DType dtype = DType::F32);
// A length-n N(0, 1) vector divided by its norm.
Tensor random_unit_vector(int64_t n, Rng& gen, DType dtype = DType::F32);

}  // namespace sagan::nn
