// One power iteration per weight matrix, in place on the persistent u and v:
// v = normalize(W^T u), then u = normalize(W v) (the order of
// torch.nn.utils.spectral_norm). Matrices are independent, so the loop over
// them is what runs in parallel; each one is two GEMVs.
#include <algorithm>
#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/cpu_backend.h"

namespace sagan {

namespace {

template <class T>
void iterate_one(const Tensor& w, Tensor& u, Tensor& v, double eps) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  const int64_t rows = w.size(0), cols = w.size(1);
  Eigen::Map<const Mat> W(static_cast<const T*>(w.raw_data()), rows, cols);
  Eigen::Map<Vec> U(static_cast<T*>(u.raw_data()), rows);
  Eigen::Map<Vec> V(static_cast<T*>(v.raw_data()), cols);
  // max(|x|, eps) keeps a zero vector at zero instead of producing NaN.
  V.noalias() = W.transpose() * U;
  V /= std::max(V.norm(), static_cast<T>(eps));
  U.noalias() = W * V;
  U /= std::max(U.norm(), static_cast<T>(eps));
}

}  // namespace

void CpuBackend::power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v,
                                 double eps) {
  const int64_t n = static_cast<int64_t>(w.size());
  // Validate before the parallel loop: nothing may throw inside it.
  int64_t work = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& wi = w[static_cast<size_t>(i)];
    SAGAN_CHECK(is_floating(wi.dtype()) && wi.dim() == 2 && wi.is_contiguous(),
                "power_iteration: w[{}] must be a contiguous floating 2-d tensor, got {} {}", i, dtype_name(wi.dtype()),
                shape_str(wi.shape()));
    work += wi.numel();
  }
#pragma omp parallel for schedule(dynamic) if (n > 1 && work >= (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) {
    const size_t s = static_cast<size_t>(i);
    if (w[s].dtype() == DType::F32)
      iterate_one<float>(w[s], u[s], v[s], eps);
    else
      iterate_one<double>(w[s], u[s], v[s], eps);
  }
}

}  // namespace sagan
