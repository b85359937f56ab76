// General k x k pooling and adaptive average pooling, forward and backward:
// the launches of pool2d_kernels.cuh's kernels over (N, C, H, W) tensors,
// one plane per (n, c). The evaluation networks (Inception-v3's pools, its
// final global average) run here rather than on the CPU with host copies.
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/pool2d_kernels.cuh"

namespace sagan {
using namespace cuda;

namespace {
// The two axes of a pool with geometry g over an (H, W) plane, and the
// divisor its average uses when the padding counts (0: the window's area).
struct WindowGeom {
  WindowAxis rows, cols;
  int64_t fixed_count;
};
WindowGeom window_geom(Pool2dGeom g, int64_t H, int64_t W) {
  return {{g.kernel, g.stride, g.pad, H},
          {g.kernel, g.stride, g.pad, W},
          g.mode == PoolMode::AvgIncludePad ? g.kernel * g.kernel : 0};
}
}  // namespace

void CudaBackend::pool2d(const Tensor& x_in, Tensor& out, Pool2dGeom g) {
  const char* op = "pool2d";
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  const WindowGeom w = window_geom(g, x.size(2), x.size(3));
  const int64_t Ho = out.size(2), Wo = out.size(3);
  const bool is_max = g.mode == PoolMode::Max;
  launch_float(out.dtype(), op, is_max ? "pool2d_kernel<max>" : "pool2d_kernel<avg>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    auto kernel = is_max ? pool2d_kernel<T, true, WindowAxis> : pool2d_kernel<T, false, WindowAxis>;
    kernel<<<blocks_for(total), kBlock, 0, stream_>>>(static_cast<const T*>(x.raw_data()),
                                                      static_cast<T*>(out.raw_data()), w.rows, w.cols, w.fixed_count,
                                                      Ho, Wo, total);
  });
}

void CudaBackend::pool2d_backward(const Tensor& x_in, const Tensor& gy_in, Tensor& gx, Pool2dGeom g) {
  const char* op = "pool2d_backward";
  const int64_t total = gx.numel();
  if (total == 0) return;
  const bool is_max = g.mode == PoolMode::Max;
  const Tensor gy = dense(*this, gy_in);
  const Tensor x = is_max ? dense(*this, x_in) : Tensor();  // read for max only
  const WindowGeom w = window_geom(g, gx.size(2), gx.size(3));
  const int64_t Ho = gy.size(2), Wo = gy.size(3);
  launch_float(gx.dtype(), op, is_max ? "pool2d_backward_kernel<max>" : "pool2d_backward_kernel<avg>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    auto kernel = is_max ? pool2d_backward_kernel<T, true, WindowAxis> : pool2d_backward_kernel<T, false, WindowAxis>;
    kernel<<<blocks_for(total), kBlock, 0, stream_>>>(
        is_max ? static_cast<const T*>(x.raw_data()) : nullptr, static_cast<const T*>(gy.raw_data()),
        static_cast<T*>(gx.raw_data()), w.rows, w.cols, w.fixed_count, Ho, Wo, total);
  });
}

void CudaBackend::adaptive_avg_pool2d(const Tensor& x_in, Tensor& out) {
  const char* op = "adaptive_avg_pool2d";
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  const int64_t Ho = out.size(2), Wo = out.size(3);
  const AdaptiveAxis rows{x.size(2), Ho}, cols{x.size(3), Wo};
  launch_float(out.dtype(), op, "pool2d_kernel<adaptive>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool2d_kernel<T, false, AdaptiveAxis><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), rows, cols, 0, Ho, Wo, total);
  });
}

void CudaBackend::adaptive_avg_pool2d_backward(const Tensor& gy_in, Tensor& gx) {
  const char* op = "adaptive_avg_pool2d_backward";
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  const int64_t Ho = gy.size(2), Wo = gy.size(3);
  const AdaptiveAxis rows{gx.size(2), Ho}, cols{gx.size(3), Wo};
  launch_float(gx.dtype(), op, "pool2d_backward_kernel<adaptive>", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool2d_backward_kernel<T, false, AdaptiveAxis><<<blocks_for(total), kBlock, 0, stream_>>>(
        nullptr, static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), rows, cols, 0, Ho, Wo, total);
  });
}

}  // namespace sagan
