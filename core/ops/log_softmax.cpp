// log_softmax front end: log(softmax(x)) over one dim in one kernel, stable
// for large logits (the classifier's cross-entropy). Like softmax, the
// kernels work on the last dim of a contiguous tensor: `dim` is moved there
// and back. Backward: gx = gy - softmax(x) * sum(gy), from the saved output.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

Tensor log_softmax(const Tensor& x, int64_t dim) {
  const char* op = "log_softmax";
  detail::check_float(op, x);
  dim = wrap_dim_scalar_as_1d(dim, x.shape(), op);
  if (x.dim() == 0) return log_softmax(x.reshape({1}), 0).reshape({});
  const int64_t last = x.dim() - 1;
  Tensor xl = (dim == last ? x.detach() : x.detach().transpose(dim, last)).contiguous();
  Tensor yl = Tensor::empty(xl.shape(), x.dtype(), x.device());
  if (yl.numel() > 0) backend_of(x).log_softmax(xl, yl);
  Tensor out = dim == last ? yl : yl.transpose(dim, last).contiguous();
  record(op, out, {x}, [dim, last, yl = saved(yl)](const Tensor& g, const std::vector<bool>&) {
    Tensor gl = (dim == last ? g : g.transpose(dim, last)).contiguous();
    Tensor gxl = Tensor::empty(gl.shape(), gl.dtype(), gl.device());
    if (gxl.numel() > 0) backend_of(gl).log_softmax_backward(yl, gl, gxl);
    return std::vector<Tensor>{dim == last ? gxl : gxl.transpose(dim, last).contiguous()};
  });
  return out;
}

}  // namespace sagan
