// Batch-norm statistics, normalisation and backward for x (B, C, ...)
// contiguous. The kernels, the slice plan and the launch sequences live in
// batch_norm_kernels.cuh (which the CPU emulator tests run as they are);
// this file supplies the launches on the backend's stream and the double
// workspace of the sliced paths.
#include "sagan/kernels/cuda/batch_norm_kernels.cuh"
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"

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

// kernel<<<grid, kBlock>>> on `stream`, then the launch check naming op and
// kernel; the sequences in batch_norm_kernels.cuh call it through a lambda.
template <class... P, class... A>
void launch_bn(cudaStream_t stream, const char* op, void (*kernel)(P...), const char* name, unsigned grid, A... args) {
  kernel<<<grid, kBlock, 0, stream>>>(static_cast<P>(args)...);
  check_launch(op, name, stream);
}
}  // namespace

void CudaBackend::batch_norm_stats(const Tensor& x_in, Tensor& mean, Tensor& var, Tensor& invstd, double eps) {
  const char* op = "batch_norm_stats";
  const Tensor x = dense(*this, x_in);
  const Dims d = dims_of(x);
  SAGAN_CHECK(d.batch * d.hw > 0, "{}: no elements per channel in input of shape {}", op, shape_str(x.shape()));
  if (d.channels == 0) return;
  const BnPlan plan = plan_bn(d.batch, d.hw);
  // Returned to the allocator at scope exit while the kernels may still be
  // queued: safe, the device has one stream and the next user queues behind.
  Buffer ws;
  if (const int64_t doubles = bn_workspace_doubles(plan, d.channels); doubles > 0)
    ws = buffer(static_cast<size_t>(doubles) * sizeof(double));
  auto launch = [&](auto kernel, const char* name, unsigned grid, auto... args) {
    launch_bn(stream_, op, kernel, name, grid, args...);
  };
  dispatch_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bn_stats_launches<T>(launch, plan, static_cast<const T*>(x.raw_data()), static_cast<T*>(mean.raw_data()),
                         static_cast<T*>(var.raw_data()), static_cast<T*>(invstd.raw_data()), ws.get<double>(), d.batch,
                         d.channels, d.hw, eps);
  });
}

void CudaBackend::batch_norm_normalize(const Tensor& x_in, const Tensor& mean, const Tensor& invstd, Tensor& out) {
  const char* op = "batch_norm_normalize";
  const Tensor x = dense(*this, x_in);
  const Dims d = dims_of(x);
  if (x.numel() == 0) return;
  auto launch = [&](auto kernel, const char* name, unsigned grid, auto... args) {
    launch_bn(stream_, op, kernel, name, grid, args...);
  };
  dispatch_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bn_normalize_launches<T>(launch, static_cast<const T*>(x.raw_data()), static_cast<const T*>(mean.raw_data()),
                             mean.strides()[0], static_cast<const T*>(invstd.raw_data()), invstd.strides()[0],
                             static_cast<T*>(out.raw_data()), d.batch, d.channels, d.hw);
  });
}

void CudaBackend::batch_norm_backward(const Tensor& x_in, const Tensor& mean, const Tensor& invstd, const Tensor& gy_in,
                                      Tensor& gx) {
  const char* op = "batch_norm_backward";
  const Tensor x = dense(*this, x_in), gy = dense(*this, gy_in);
  const Dims d = dims_of(x);
  if (x.numel() == 0) return;
  const BnPlan plan = plan_bn(d.batch, d.hw);
  Buffer ws;  // as in batch_norm_stats
  if (const int64_t doubles = bn_workspace_doubles(plan, d.channels); doubles > 0)
    ws = buffer(static_cast<size_t>(doubles) * sizeof(double));
  auto launch = [&](auto kernel, const char* name, unsigned grid, auto... args) {
    launch_bn(stream_, op, kernel, name, grid, args...);
  };
  dispatch_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bn_backward_launches<T>(launch, plan, static_cast<const T*>(x.raw_data()), static_cast<const T*>(mean.raw_data()),
                            mean.strides()[0], static_cast<const T*>(invstd.raw_data()), invstd.strides()[0],
                            static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), ws.get<double>(),
                            d.batch, d.channels, d.hw);
  });
}

}  // namespace sagan
