// Bilinear resize (align_corners=False, no antialiasing): how pytorch-fid
// brings any image to Inception's 299x299, and how the Fashion-MNIST feature
// network brings generated images to 28x28. See core/ops_eval.h.
#include "core/ops/eval_common.h"
#include "core/ops_eval.h"
#include "kernels/cpu/eval_kernels.h"

namespace sagan {

Tensor resize_bilinear(const Tensor& x, int64_t out_h, int64_t out_w) {
  const char* op = "resize_bilinear";
  detail::check_float(op, x);
  SAGAN_CHECK(x.dim() == 4, "{}: expected an NCHW tensor, got shape {}", op, shape_str(x.shape()));
  SAGAN_CHECK(out_h >= 1 && out_w >= 1, "{}: output size must be positive, got {}x{} for input {}", op, out_h, out_w,
              shape_str(x.shape()));
  SAGAN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "{}: input {} has an empty plane", op, shape_str(x.shape()));
  Tensor xc = detail::cpu_contiguous(x);
  Tensor out = detail::run_on_cpu({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device(),
                                  [&](Tensor& o) { cpu::resize_bilinear(xc, o); });
  const Shape in_shape = x.shape();
  record(op, out, {x}, [in_shape](const Tensor& g, const std::vector<bool>&) {
    Tensor gc = detail::cpu_contiguous(g);
    return std::vector<Tensor>{detail::run_on_cpu(in_shape, g.dtype(), g.device(),
                                                  [&](Tensor& gx) { cpu::resize_bilinear_backward(gc, gx); })};
  });
  return out;
}

}  // namespace sagan
