// Batch-norm statistics, normalisation and backward (the kernels:
// batch_norm_kernels.cuh) for x (B, C, ...) contiguous.
#include "kernels/cuda/batch_norm_kernels.cuh"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {
using namespace cuda;

namespace {
struct Dims {
  int64_t batch, channels, hw;
};

// (B, C, then the spatial dims flattened).
Dims dims_of(const Tensor& x) {
  Dims d{x.size(0), x.size(1), 1};
  for (int64_t i = 2; i < x.dim(); ++i) d.hw *= x.size(i);
  return d;
}
}  // namespace

void CudaBackend::batch_norm_stats(const Tensor& x_in, Tensor& mean, Tensor& invstd, double eps) {
  const char* op = "batch_norm_stats";
  const Tensor x = dense(*this, x_in);
  const Dims d = dims_of(x);
  SAGAN_CHECK(d.batch * d.hw > 0, "{}: no elements per channel in input of shape {}", op, shape_str(x.shape()));
  if (d.channels == 0) return;
  launch_float(x.dtype(), op, "bn_stats_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bn_stats_kernel<T><<<grid_for_rows(d.channels), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(mean.raw_data()), static_cast<T*>(invstd.raw_data()),
        d.batch, d.channels, d.hw, eps);
  });
}

void CudaBackend::batch_norm_normalize(const Tensor& x_in, const Tensor& mean, const Tensor& invstd, Tensor& out) {
  const char* op = "batch_norm_normalize";
  const Tensor x = dense(*this, x_in);
  const Dims d = dims_of(x);
  const int64_t total = x.numel();
  if (total == 0) return;
  launch_float(x.dtype(), op, "bn_normalize_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bn_normalize_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(mean.raw_data()), mean.strides()[0],
        static_cast<const T*>(invstd.raw_data()), invstd.strides()[0], static_cast<T*>(out.raw_data()), d.channels,
        d.hw, total);
  });
}

void CudaBackend::batch_norm_backward(const Tensor& x_in, const Tensor& mean, const Tensor& invstd, const Tensor& gy_in,
                                      Tensor& gx) {
  const char* op = "batch_norm_backward";
  const Tensor x = dense(*this, x_in), gy = dense(*this, gy_in);
  const Dims d = dims_of(x);
  if (x.numel() == 0) return;
  launch_float(x.dtype(), op, "bn_backward_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bn_backward_kernel<T><<<grid_for_rows(d.channels), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(mean.raw_data()), mean.strides()[0],
        static_cast<const T*>(invstd.raw_data()), invstd.strides()[0], static_cast<const T*>(gy.raw_data()),
        static_cast<T*>(gx.raw_data()), d.batch, d.channels, d.hw);
  });
}

}  // namespace sagan
