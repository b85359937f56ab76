// Reductions: sum and mean over all or some dims, sum_to_shape (the adjoint
// of broadcasting), and softmax over one dim.
#include <algorithm>

#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

namespace {
// Sum over `mask`ed dims keeping rank (reduced dims become 1).
Tensor sum_keep(const Tensor& x, const std::vector<bool>& mask) {
  Shape s = x.shape();
  for (size_t i = 0; i < s.size(); ++i)
    if (mask[i]) s[i] = 1;
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  backend_of(x).sum(x, out);
  return out;
}

std::vector<bool> all_dims(const Tensor& x, const char* op) {
  detail::check_defined(op, x);
  return std::vector<bool>(static_cast<size_t>(x.dim()), true);
}

std::vector<bool> dims_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  detail::check_defined(op, x);
  // A 0-d tensor's one dim (0 or -1) is marked in `seen` only: reducing it
  // leaves the value as it is.
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), false);
  for (int64_t d : dims) {
    int64_t w = wrap_dim_scalar_as_1d(d, x.shape(), op);
    SAGAN_CHECK(!seen[static_cast<size_t>(w)], "{}: dim {} given twice", op, d);
    seen[static_cast<size_t>(w)] = true;
  }
  if (x.dim() == 0) return {};
  return seen;
}

Tensor sum_impl(const Tensor& x, const std::vector<bool>& mask, bool keepdim, const char* op) {
  detail::check_float(op, x);
  Tensor kept = sum_keep(x, mask);
  Shape out_shape;
  for (size_t i = 0; i < mask.size(); ++i)
    if (!mask[i] || keepdim) out_shape.push_back(kept.shape()[i]);
  Tensor out = keepdim ? kept : make_view(kept, out_shape, contiguous_strides(out_shape), 0);
  Shape in_shape = x.shape(), kept_shape = kept.shape();
  record(op, out, {x}, [in_shape, kept_shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.reshape(kept_shape).expand(in_shape).contiguous()};
  });
  return out;
}
}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(x, all_dims(x, "sum"), false, "sum"); }

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims_mask(x, dims, "sum"), keepdim, "sum");
}

Tensor mean(const Tensor& x) {
  detail::check_defined("mean", x);
  SAGAN_CHECK(x.numel() > 0, "mean: empty tensor of shape {}", shape_str(x.shape()));
  return mul(sum(x), 1.0 / static_cast<double>(x.numel()));
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  auto mask = dims_mask(x, dims, "mean");
  int64_t n = 1;
  for (size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) n *= x.shape()[i];
  SAGAN_CHECK(n > 0, "mean: reducing over an empty dim of shape {}", shape_str(x.shape()));
  return mul(sum_impl(x, mask, keepdim, "mean"), 1.0 / static_cast<double>(n));
}

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  detail::check_defined("sum_to_shape", x);
  if (x.shape() == shape) return x;
  SAGAN_CHECK(x.dim() >= static_cast<int64_t>(shape.size()), "sum_to_shape: cannot reduce {} to {}",
              shape_str(x.shape()), shape_str(shape));
  size_t lead = x.shape().size() - shape.size();
  std::vector<bool> mask(x.shape().size(), false);
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) {
      mask[i] = true;
      continue;
    }
    int64_t t = shape[i - lead];
    SAGAN_CHECK(t == x.shape()[i] || t == 1, "sum_to_shape: cannot reduce {} to {}", shape_str(x.shape()),
                shape_str(shape));
    mask[i] = t == 1 && x.shape()[i] != 1;
  }
  return sum_impl(x, mask, true, "sum_to_shape").reshape(shape);
}

Tensor softmax(const Tensor& x, int64_t dim) {
  detail::check_float("softmax", x);
  dim = wrap_dim_scalar_as_1d(dim, x.shape(), "softmax");
  if (x.dim() == 0) return softmax(x.reshape({1}), 0).reshape({});
  int64_t last = x.dim() - 1;
  // The kernel works on the last dim; move `dim` there and back.
  Tensor xl = (dim == last ? x.detach() : x.detach().transpose(dim, last)).contiguous();
  Tensor yl = Tensor::empty(xl.shape(), x.dtype(), x.device());
  backend_of(x).softmax(xl, yl);
  Tensor out = dim == last ? yl : yl.transpose(dim, last).contiguous();
  record("softmax", out, {x}, [dim, last, yl = saved(yl)](const Tensor& g, const std::vector<bool>&) {
    Tensor gl = (dim == last ? g : g.transpose(dim, last)).contiguous();
    Tensor gxl = Tensor::empty(gl.shape(), gl.dtype(), gl.device());
    backend_of(gl).softmax_backward(yl, gl, gxl);
    return std::vector<Tensor>{dim == last ? gxl : gxl.transpose(dim, last).contiguous()};
  });
  return out;
}

}  // namespace sagan
