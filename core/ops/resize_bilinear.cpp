// Bilinear resize (align_corners=False, no antialiasing): how pytorch-fid
// brings any image to Inception's 299x299, and how the Fashion-MNIST feature
// network brings generated images to 28x28. See core/ops_vision.h.
#include "sagan/core/ops/common.h"
#include "sagan/core/ops_vision.h"

namespace sagan {

using detail::backend_of;

Tensor resize_bilinear(const Tensor& x, int64_t out_h, int64_t out_w) {
  const char* op = "resize_bilinear";
  detail::check_nchw(op, x);
  SAGAN_CHECK(out_h >= 1 && out_w >= 1, "{}: output size must be positive, got {}x{} for input {}", op, out_h, out_w,
              shape_str(x.shape()));
  SAGAN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "{}: input {} has an empty plane", op, shape_str(x.shape()));
  Tensor out = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
  if (out.numel() > 0) backend_of(x).resize_bilinear(detail::raw_contiguous(x), out);
  const Shape in_shape = x.shape();
  record(op, out, {x}, [in_shape](const Tensor& gy, const std::vector<bool>&) {
    Tensor gx = Tensor::empty(in_shape, gy.dtype(), gy.device());
    if (gx.numel() > 0) backend_of(gy).resize_bilinear_backward(detail::raw_contiguous(gy), gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace sagan
