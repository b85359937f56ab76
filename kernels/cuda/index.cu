// index_select and index_add (kernels: index_kernels.cuh); idx is int64 on
// the device, range-checked by the front end outside sync-free regions.
// index_add is ordered in deterministic mode (settings.h, the default). The
// engine's index_add is the backward of embeddings and index_select: n is a
// batch, O * I a few thousand columns, so the ordered loop is short.
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/index_kernels.cuh"
#include "sagan/kernels/cuda/launch.cuh"

namespace sagan {
using namespace cuda;

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
