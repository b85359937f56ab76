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

}  // namespace

void CudaBackend::index_select(const Tensor& x_in, const Tensor& idx, Tensor& out) {
  const char* op = "index_select";
  const int64_t total = out.numel();
  if (total == 0) return;
  const Tensor x = dense(*this, x_in);
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
  const int64_t total = src_in.numel();
  if (total == 0) return;
  const Tensor src = dense(*this, src_in);
  launch_float(out.dtype(), op, "index_add_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    index_add_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(
        static_cast<const T*>(src.raw_data()), static_cast<const int64_t*>(idx.raw_data()), idx.strides()[0],
        static_cast<T*>(out.raw_data()), out.size(1), src.size(1), src.size(2), total);
  });
}

}  // namespace sagan
