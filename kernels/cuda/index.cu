// index_select (gather rows) and index_add (scatter-add rows, atomicAdd so
// repeated indices accumulate) over (O, R, I) views; idx is int64 on the
// device, already range-checked by the front end.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

// out (O, n, I) = x (O, R, I)[:, idx, :]
template <class T>
__global__ void __launch_bounds__(kBlock) index_select_kernel(const T* x, const int64_t* idx, int64_t idx_stride,
                                                              T* out, int64_t R, int64_t n, int64_t I, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    const int64_t i = e % I, rest = e / I, j = rest % n, o = rest / n;
    out[e] = x[(o * R + idx[j * idx_stride]) * I + i];
  }
}

// out (O, R, I) += src (O, n, I) scattered to rows idx.
template <class T>
__global__ void __launch_bounds__(kBlock) index_add_kernel(const T* src, const int64_t* idx, int64_t idx_stride, T* out,
                                                           int64_t R, int64_t n, int64_t I, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    const int64_t i = e % I, rest = e / I, j = rest % n, o = rest / n;
    atomicAdd(out + (o * R + idx[j * idx_stride]) * I + i, src[e]);
  }
}

// big (O, R, I) and small (O, n, I) with idx (n).
void check_index(const char* op, const Tensor& big, const Tensor& small, const Tensor& idx, const char* big_name,
                 const char* small_name) {
  SAGAN_CHECK(big.dim() == 3 && small.dim() == 3 && idx.dim() == 1 && idx.dtype() == DType::I64 &&
                  big.size(0) == small.size(0) && big.size(2) == small.size(2) && small.size(1) == idx.size(0) &&
                  big.dtype() == small.dtype(),
              "{}: expected {} (O, R, I), {} (O, n, I) of one dtype and int64 idx (n), got {} {}, {} {}, idx {} {}", op,
              big_name, small_name, dtype_name(big.dtype()), shape_str(big.shape()), dtype_name(small.dtype()),
              shape_str(small.shape()), dtype_name(idx.dtype()), shape_str(idx.shape()));
}
}  // namespace

void CudaBackend::index_select(const Tensor& x_in, const Tensor& idx, Tensor& out) {
  const char* op = "index_select";
  check_on(*this, op, x_in, "input");
  check_on(*this, op, idx, "index");
  check_on(*this, op, out, "output");
  check_index(op, x_in, out, idx, "input", "output");
  SAGAN_CHECK(out.is_contiguous(), "{}: output of shape {} must be contiguous", op, shape_str(out.shape()));
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
  DeviceGuard guard(device_);
  dispatch_all(out.dtype(), [&](auto* tag) {  // a gather: int64 rows too
    using T = std::remove_pointer_t<decltype(tag)>;
    index_select_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(idx.raw_data()), idx.strides()[0],
        static_cast<T*>(out.raw_data()), x.size(1), out.size(1), out.size(2), total);
  });
  check_launch(op, "index_select_kernel", stream_);
}

void CudaBackend::index_add(const Tensor& src_in, const Tensor& idx, Tensor& out) {
  const char* op = "index_add";
  check_on(*this, op, src_in, "source");
  check_on(*this, op, idx, "index");
  check_on(*this, op, out, "output");
  check_index(op, out, src_in, idx, "output", "source");
  SAGAN_CHECK(out.is_contiguous(), "{}: output of shape {} must be contiguous", op, shape_str(out.shape()));
  const int64_t total = src_in.numel();
  if (total == 0) return;
  const Tensor src = dense(*this, src_in);
  DeviceGuard guard(device_);
  dispatch_float(out.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    index_add_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(src.raw_data()), static_cast<const int64_t*>(idx.raw_data()), idx.strides()[0],
        static_cast<T*>(out.raw_data()), out.size(1), src.size(1), src.size(2), total);
  });
  check_launch(op, "index_add_kernel", stream_);
}

}  // namespace sagan
