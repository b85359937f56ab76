// The largest singular value of a 2-d tensor by Eigen's float64 SVD: the
// reference the spectral-norm tests hold the power iteration to
// (tests/test_spectral_norm.cpp, tests/test_layers_sn.cpp).
#pragma once
// Eigen is the engine's private dependency; its headers sit under
// /usr/include/eigen3 on every supported system.
#include <eigen3/Eigen/SVD>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::testing {

inline double largest_singular_value(const Tensor& w2d) {
  const std::vector<double> x = w2d.to_vector();
  Eigen::MatrixXd m(w2d.size(0), w2d.size(1));
  for (int64_t i = 0; i < w2d.size(0); ++i)
    for (int64_t j = 0; j < w2d.size(1); ++j) m(i, j) = x[static_cast<size_t>(i * w2d.size(1) + j)];
  return Eigen::JacobiSVD<Eigen::MatrixXd>(m).singularValues()(0);
}

}  // namespace sagan::testing
