// log_softmax over the last dim and its backward: the launches of
// softmax.cuh's row kernels, one block per row. The classifiers of the
// evaluation tools (sagan-class-diversity, sagan-train-classifier) end here.
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/softmax.cuh"

namespace sagan {
using namespace cuda;

void CudaBackend::log_softmax(const Tensor& x_in, Tensor& out) {
  const int64_t n = x_in.shape().empty() ? 1 : x_in.shape().back();
  const int64_t rows = n == 0 ? 0 : x_in.numel() / n;
  if (rows == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(x.dtype(), "log_softmax", "log_softmax_rows_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    log_softmax_rows_kernel<T><<<grid_for_rows(rows), block_for_row(n), 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), rows, n);
  });
}

void CudaBackend::log_softmax_backward(const Tensor& y_in, const Tensor& gy_in, Tensor& gx) {
  const int64_t n = y_in.shape().empty() ? 1 : y_in.shape().back();
  const int64_t rows = n == 0 ? 0 : y_in.numel() / n;
  if (rows == 0) return;
  const Tensor y = dense(*this, y_in), gy = dense(*this, gy_in);
  launch_float(y.dtype(), "log_softmax_backward", "log_softmax_backward_rows_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    log_softmax_backward_rows_kernel<T><<<grid_for_rows(rows), block_for_row(n), 0, stream_>>>(
        static_cast<const T*>(y.raw_data()), static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), rows,
        n);
  });
}

}  // namespace sagan
