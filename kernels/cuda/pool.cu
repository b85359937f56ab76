// 2x2 average and max pooling and nearest 2x upsampling, with backward: the
// launches of pool_kernels.cuh's kernels over (..., H, W) planes.
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/pool_kernels.cuh"

namespace sagan {
using namespace cuda;

namespace {
// The full-resolution side's planes, (..., H, W): the input of a pool, the
// output of an upsampling.
struct Plane {
  int64_t H, W;
};
Plane plane_of(const Tensor& big) { return {big.size(-2), big.size(-1)}; }
}  // namespace

void CudaBackend::avg_pool2x2(const Tensor& x_in, Tensor& out) {
  const char* op = "avg_pool2x2";
  const Plane p = plane_of(x_in);
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(out.dtype(), op, "pool_kernel<avg>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_kernel<T, false><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::avg_pool2x2_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "avg_pool2x2_backward";
  const Plane p = plane_of(gx);
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  launch_float(gx.dtype(), op, "pool_backward_kernel<avg>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_backward_kernel<T, false>
        <<<blocks_for(total), kBlock, 0, stream_>>>(nullptr, static_cast<const T*>(gy.raw_data()),
                                                    static_cast<T*>(gx.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::max_pool2x2(const Tensor& x_in, Tensor& out) {
  const char* op = "max_pool2x2";
  const Plane p = plane_of(x_in);
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(out.dtype(), op, "pool_kernel<max>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_kernel<T, true><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H, p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::max_pool2x2_backward(const Tensor& x_in, const Tensor& gy_in, Tensor& gx) {
  const char* op = "max_pool2x2_backward";
  const Plane p = plane_of(gx);
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in), gy = dense(*this, gy_in);
  launch_float(gx.dtype(), op, "pool_backward_kernel<max>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_backward_kernel<T, true><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), p.H,
        p.W, p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::upsample_nearest2x(const Tensor& x_in, Tensor& out) {
  const char* op = "upsample_nearest2x";
  const Plane p = plane_of(out);
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  launch_float(out.dtype(), op, "upsample_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    upsample_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), p.H / 2, p.W / 2, total);
  });
}

void CudaBackend::upsample_nearest2x_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "upsample_nearest2x_backward";
  const Plane p = plane_of(gy_in);
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  launch_float(gx.dtype(), op, "upsample_backward_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    upsample_backward_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), p.H / 2, p.W / 2, total);
  });
}

}  // namespace sagan
