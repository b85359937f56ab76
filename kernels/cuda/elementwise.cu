// Unary, unary-backward and broadcasting binary ops: the launches of the
// kernels in elementwise_kernels.cuh, with kernels/elementwise_math.h's
// functors.
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/elementwise_kernels.cuh"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/strided.cuh"
#include "sagan/kernels/elementwise_math.h"

namespace sagan {
using namespace cuda;

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  const char* name = unary_op_name(op);
  const int64_t n = out.numel();
  if (n == 0) return;
  auto g = make_strided<2>(name, out.shape(), {&out.strides(), &x.strides()});
  launch_float(out.dtype(), name, "unary_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    math::with_unary<T>(op, [&](auto f) {
      unary_kernel<T><<<blocks_for(n), kBlock, 0, stream_>>>(
          static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), g, n, f, static_cast<T>(alpha));
    });
  });
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                 double alpha) {
  const char* name = unary_op_name(op);
  const int64_t n = gx.numel();
  if (n == 0) return;
  auto g = make_strided<4>(name, gx.shape(), {&gx.strides(), &x.strides(), &y.strides(), &gy.strides()});
  launch_float(gx.dtype(), name, "unary_backward_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    math::with_unary_grad<T>(op, [&](auto df) {
      unary_backward_kernel<T><<<blocks_for(n), kBlock, 0, stream_>>>(
          static_cast<const T*>(x.raw_data()), static_cast<const T*>(y.raw_data()),
          static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), g, n, df, static_cast<T>(alpha));
    });
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const char* name = binary_op_name(op);
  const int64_t n = out.numel();
  if (n == 0) return;
  auto g = make_strided<3>(name, out.shape(), {&out.strides(), &a.strides(), &b.strides()});
  launch_float(out.dtype(), name, "binary_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    math::with_binary<T>(op, [&](auto f) {
      binary_kernel<T><<<blocks_for(n), kBlock, 0, stream_>>>(static_cast<const T*>(a.raw_data()),
                                                              static_cast<const T*>(b.raw_data()),
                                                              static_cast<T*>(out.raw_data()), g, n, f);
    });
  });
}

}  // namespace sagan
