// Bilinear resampling (half-pixel centers, no antialiasing), forward and
// backward: the launches of resize_bilinear_kernels.cuh's kernels over
// (N, C, H, W) tensors. The evaluation networks' input resize (to
// Inception-v3's 299 x 299) runs here rather than on the CPU with host copies.
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/resize_bilinear_kernels.cuh"

namespace sagan {
using namespace cuda;

void CudaBackend::resize_bilinear(const Tensor& x_in, Tensor& out) {
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  const BilinearAxis rows{x.size(2), out.size(2)}, cols{x.size(3), out.size(3)};
  launch_float(out.dtype(), "resize_bilinear", "resize_bilinear_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    resize_bilinear_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), rows, cols, total);
  });
}

void CudaBackend::resize_bilinear_backward(const Tensor& gy_in, Tensor& gx) {
  const int64_t total = gx.numel();
  if (total == 0) return;
  const Tensor gy = dense(*this, gy_in);
  const BilinearAxis rows{gx.size(2), gy.size(2)}, cols{gx.size(3), gy.size(3)};
  launch_float(gx.dtype(), "resize_bilinear_backward", "resize_bilinear_backward_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    resize_bilinear_backward_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), rows, cols, total);
  });
}

}  // namespace sagan
