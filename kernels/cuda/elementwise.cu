// Unary, unary-backward and broadcasting binary kernels. The per-element
// formulas are the functors of kernels/elementwise_math.h, the same the CPU
// backend evaluates. Broadcast operands arrive expanded (stride 0); dense
// operands take the flat path. No __restrict__: out may alias an input (same
// geometry), and each element is read before it is written by one thread.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/strided.cuh"
#include "kernels/elementwise_math.h"

namespace sagan {

namespace {
using namespace cuda;

// Offsets: [0] out, [1] x.
template <class T, class F>
__global__ void __launch_bounds__(kBlock) unary_kernel(const T* x, T* out, Strided<2> g, int64_t n, F f, T a) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = f(x[i], a);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[2];
    g.offsets(i, off);
    out[off[0]] = f(x[off[1]], a);
  }
}

// Offsets: [0] gx, [1] x, [2] y, [3] gy.
template <class T, class F>
__global__ void __launch_bounds__(kBlock)
    unary_backward_kernel(const T* x, const T* y, const T* gy, T* gx, Strided<4> g, int64_t n, F df, T a) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) gx[i] = gy[i] * df(x[i], y[i], a);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[4];
    g.offsets(i, off);
    gx[off[0]] = gy[off[3]] * df(x[off[1]], y[off[2]], a);
  }
}

// Offsets: [0] out, [1] a, [2] b.
template <class T, class F>
__global__ void __launch_bounds__(kBlock) binary_kernel(const T* a, const T* b, T* out, Strided<3> g, int64_t n, F f) {
  if (g.flat()) {
    for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = f(a[i], b[i]);
    return;
  }
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    int64_t off[3];
    g.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

}  // namespace

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
