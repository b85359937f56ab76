// index_select (gather rows) and index_add (scatter-add rows) over (O, R, I)
// views; idx is int64 on the device, already range-checked by the front end.
// index_add in deterministic mode (settings.h, the default) gives each output
// column (o, i) one thread that walks the n source rows in order, so repeated
// indices add up in a fixed order; otherwise one thread per source element
// adds with atomicAdd (more parallel, order varies between runs). The
// engine's index_add is the backward of embeddings and index_select: n is a
// batch, O * I a few thousand columns, so the ordered loop is short.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.cuh"

namespace sagan {

namespace {
using namespace cuda;

// The front end range-checks indices on the host, except inside a sync-free
// region (core/sync_free.h), where reading them back would stall the step:
// there an out-of-range row stops the kernel (a launch failure reported at
// the next check) instead of touching memory outside x or out.
__device__ __forceinline__ int64_t checked_row(int64_t r, int64_t R) {
  if (r < 0 || r >= R) __trap();
  return r;
}

// out (O, n, I) = x (O, R, I)[:, idx, :]
template <class T>
__global__ void __launch_bounds__(kBlock) index_select_kernel(const T* x, const int64_t* idx, int64_t idx_stride,
                                                              T* out, int64_t R, int64_t n, int64_t I, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    const int64_t i = e % I, rest = e / I, j = rest % n, o = rest / n;
    out[e] = x[(o * R + checked_row(idx[j * idx_stride], R)) * I + i];
  }
}

// out (O, R, I) += src (O, n, I) scattered to rows idx.
template <class T>
__global__ void __launch_bounds__(kBlock) index_add_kernel(const T* src, const int64_t* idx, int64_t idx_stride, T* out,
                                                           int64_t R, int64_t n, int64_t I, int64_t total) {
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    const int64_t i = e % I, rest = e / I, j = rest % n, o = rest / n;
    atomicAdd(out + (o * R + checked_row(idx[j * idx_stride], R)) * I + i, src[e]);
  }
}

// The same, deterministic: thread (o, i) adds src[o, j, i] for j = 0, 1, ...
template <class T>
__global__ void __launch_bounds__(kBlock) index_add_ordered_kernel(const T* src, const int64_t* idx, int64_t idx_stride,
                                                                   T* out, int64_t R, int64_t n, int64_t I,
                                                                   int64_t columns) {
  for (int64_t e = thread_index(); e < columns; e += thread_count()) {
    const int64_t i = e % I, o = e / I;
    const T* s = src + o * n * I + i;
    T* dst = out + o * R * I + i;
    for (int64_t j = 0; j < n; ++j) dst[checked_row(idx[j * idx_stride], R) * I] += s[j * I];
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
  const bool ordered = cuda_deterministic();
  launch_float(out.dtype(), op, ordered ? "index_add_ordered_kernel" : "index_add_kernel", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* s = static_cast<const T*>(src.raw_data());
    const int64_t* ix = static_cast<const int64_t*>(idx.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    if (ordered) {
      const int64_t columns = out.size(0) * out.size(2);
      index_add_ordered_kernel<T><<<blocks_for(columns), kBlock, 0, stream_>>>(
          s, ix, idx.strides()[0], o, out.size(1), src.size(1), src.size(2), columns);
    } else {
      index_add_kernel<T><<<blocks_for(total), kBlock, 0, stream_>>>(s, ix, idx.strides()[0], o, out.size(1),
                                                                     src.size(1), src.size(2), total);
    }
  });
}

}  // namespace sagan
