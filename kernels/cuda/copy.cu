// fill and the strided, dtype-converting copy (kernels: copy_kernels.cuh).
// Same-dtype dense copies are a cudaMemcpyAsync on the stream; everything
// else is one kernel over the merged geometry of both operands.
#include "sagan/kernels/cuda/copy_kernels.cuh"
#include "sagan/kernels/cuda/cuda_backend.h"
#include "sagan/kernels/cuda/launch.cuh"
#include "sagan/kernels/cuda/strided.cuh"

namespace sagan {
using namespace cuda;

void CudaBackend::fill(Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  auto g = make_strided<1>("fill", out.shape(), {&out.strides()});
  dispatch_all(out.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_kernel<T>
        <<<blocks_for(n), kBlock, 0, stream_>>>(static_cast<T*>(out.raw_data()), g, n, convert_value<T>(value));
  });
  check_launch("fill", "fill_kernel", stream_);
}

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  SAGAN_CHECK(src.shape() == dst.shape(), "copy: source shape {} differs from destination shape {}",
              shape_str(src.shape()), shape_str(dst.shape()));
  const int64_t n = dst.numel();
  if (n == 0) return;
  auto g = make_strided<2>("copy", dst.shape(), {&dst.strides(), &src.strides()});
  if (src.dtype() == dst.dtype() && g.flat()) {
    if (src.raw_data() != dst.raw_data())
      SAGAN_CUDA_CHECK("copy",
                       cudaMemcpyAsync(dst.raw_data(), src.raw_data(), static_cast<size_t>(n) * dtype_size(dst.dtype()),
                                       cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  dispatch_all(dst.dtype(), [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    dispatch_all(src.dtype(), [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      copy_kernel<D, S><<<blocks_for(n), kBlock, 0, stream_>>>(static_cast<D*>(dst.raw_data()),
                                                               static_cast<const S*>(src.raw_data()), g, n);
    });
  });
  check_launch("copy", "copy_kernel", stream_);
}

namespace cuda {
Tensor dense(CudaBackend& be, const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
  be.copy(t, c);
  return c;
}
}  // namespace cuda

}  // namespace sagan
