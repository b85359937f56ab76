// 2x2 stride-2 pooling (odd sizes floor, like PyTorch's default) and nearest
// 2x upsampling on NCHW tensors: the resampling steps of SAGAN's down and up
// blocks and of the attention keys/values.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::check_nchw;
using detail::raw_contiguous;
using detail::saved;

namespace {
void check_poolable(const char* op, const Tensor& x) {
  check_nchw(op, x);
  SAGAN_CHECK(x.shape()[2] >= 2 && x.shape()[3] >= 2, "{}: input {} is smaller than the 2x2 window", op,
              shape_str(x.shape()));
}

Shape pooled(const Shape& s) { return {s[0], s[1], s[2] / 2, s[3] / 2}; }
}  // namespace

Tensor avg_pool2x2(const Tensor& x) {
  check_poolable("avg_pool2x2", x);
  Tensor xc = raw_contiguous(x);
  Tensor out = Tensor::empty(pooled(x.shape()), x.dtype(), x.device());
  backend_of(x).avg_pool2x2(xc, out);
  const Shape in_shape = x.shape();
  record("avg_pool2x2", out, {x}, [in_shape](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::empty(in_shape, g.dtype(), g.device());
    backend_of(g).avg_pool2x2_backward(raw_contiguous(g), gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor max_pool2x2(const Tensor& x) {
  check_poolable("max_pool2x2", x);
  Tensor xc = raw_contiguous(x);
  Tensor out = Tensor::empty(pooled(x.shape()), x.dtype(), x.device());
  backend_of(x).max_pool2x2(xc, out);
  // The backward re-derives each window's argmax from x rather than storing
  // indices: cheaper in memory and identical by construction.
  record("max_pool2x2", out, {x}, [xc = saved(xc)](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::empty(xc.shape(), g.dtype(), g.device());
    backend_of(g).max_pool2x2_backward(xc, raw_contiguous(g), gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor upsample_nearest2x(const Tensor& x) {
  check_nchw("upsample_nearest2x", x);
  const Shape& s = x.shape();
  Tensor xc = raw_contiguous(x);
  Tensor out = Tensor::empty({s[0], s[1], 2 * s[2], 2 * s[3]}, x.dtype(), x.device());
  backend_of(x).upsample_nearest2x(xc, out);
  const Shape in_shape = s;
  record("upsample_nearest2x", out, {x}, [in_shape](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::empty(in_shape, g.dtype(), g.device());
    backend_of(g).upsample_nearest2x_backward(raw_contiguous(g), gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace sagan
