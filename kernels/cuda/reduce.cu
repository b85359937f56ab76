// Sum over dims (the kernels and their choice: reduce_kernels.cuh) and
// softmax over the last dim (softmax.cuh).
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/reduce_kernels.cuh"
#include "sagan/kernels/cuda/softmax.cuh"
#include "sagan/kernels/cuda/strided.cuh"

namespace sagan {
using namespace cuda;

void CudaBackend::sum(const Tensor& x, Tensor& out) {
  const Shape& xs = x.shape();
  const Shape& os = out.shape();
  SAGAN_CHECK(xs.size() == os.size() && x.dtype() == out.dtype(),
              "sum: output {} {} must have the rank and dtype of input {} {}", dtype_name(out.dtype()), shape_str(os),
              dtype_name(x.dtype()), shape_str(xs));
  const SumGeometry geo = sum_geometry(xs, x.strides(), os, out.strides());
  const int64_t outputs = geo.outputs, r = geo.r;
  if (outputs == 0) return;
  if (r == 0) {
    fill(out, 0.0);
    return;
  }
  const Strided<2>& kg = geo.kept;
  const Strided<1>& rg = geo.reduced;
  const SumPlan plan = plan_sum(outputs, r, sm_count_);
  dispatch_float(x.dtype(), "sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    switch (plan.kind) {
      case SumPlan::Thread:
        sum_thread_kernel<T><<<plan.grid, kBlock, 0, stream_>>>(xp, op, kg, rg, outputs, r);
        check_launch("sum", "sum_thread_kernel", stream_);
        break;
      case SumPlan::Warp:
        sum_warp_kernel<T><<<plan.grid, kBlock, 0, stream_>>>(xp, op, kg, rg, outputs, r);
        check_launch("sum", "sum_warp_kernel", stream_);
        break;
      case SumPlan::Block: {
        Buffer partial;
        if (plan.parts > 1) partial = buffer(static_cast<size_t>(outputs * plan.parts) * sizeof(double));
        sum_block_kernel<T><<<plan.grid, kBlock, 0, stream_>>>(xp, op, partial.get<double>(), kg, rg, outputs, r,
                                                              plan.parts, plan.chunk);
        check_launch("sum", "sum_block_kernel", stream_);
        if (plan.parts > 1) {
          sum_partials_kernel<T>
              <<<blocks_for(outputs), kBlock, 0, stream_>>>(partial.get<double>(), op, kg, outputs, plan.parts);
          check_launch("sum", "sum_partials_kernel", stream_);
        }
        break;
      }
    }
  });
}

void CudaBackend::softmax(const Tensor& x, Tensor& out) {
  const int64_t n = x.shape().empty() ? 1 : x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  launch_float(x.dtype(), "softmax", "softmax_rows_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_rows_kernel<T><<<grid_for_rows(rows), block_for_row(n), 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), nullptr, rows, n);
  });
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  const int64_t n = y.shape().empty() ? 1 : y.shape().back();
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  if (rows == 0) return;
  launch_float(y.dtype(), "softmax_backward", "softmax_backward_rows_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_backward_rows_kernel<T><<<grid_for_rows(rows), block_for_row(n), 0, stream_>>>(
        static_cast<const T*>(y.raw_data()), static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), rows,
        n);
  });
}

}  // namespace sagan
