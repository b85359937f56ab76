// conv2d front end: NCHW, square kernel, one stride and padding for both
// axes, dilation 1. The kernels want contiguous operands, so views are
// copied once here rather than in every kernel.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

Tensor conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, int64_t stride, int64_t pad) {
  const char* op = "conv2d";
  detail::check_same(op, x, w);
  detail::check_float(op, x);
  SAGAN_CHECK(x.dim() == 4, "conv2d: input must be 4-d (B,C,H,W), got shape {}", shape_str(x.shape()));
  SAGAN_CHECK(w.dim() == 4, "conv2d: weight must be 4-d (Co,Ci,k,k), got shape {}", shape_str(w.shape()));
  SAGAN_CHECK(w.size(2) == w.size(3), "conv2d: kernel must be square, weight has shape {}", shape_str(w.shape()));
  SAGAN_CHECK(x.size(1) == w.size(1), "conv2d: input has {} channels but weight {} expects {} (input shape {})",
              x.size(1), shape_str(w.shape()), w.size(1), shape_str(x.shape()));
  SAGAN_CHECK(stride >= 1 && pad >= 0, "conv2d: need stride >= 1 and pad >= 0, got stride {} pad {}", stride, pad);
  const int64_t co = w.size(0), k = w.size(2);
  const int64_t ho = (x.size(2) + 2 * pad - k) / stride + 1, wo = (x.size(3) + 2 * pad - k) / stride + 1;
  SAGAN_CHECK(k >= 1 && x.size(2) + 2 * pad >= k && x.size(3) + 2 * pad >= k,
              "conv2d: kernel {}x{} does not fit input {} with pad {}", k, k, shape_str(x.shape()), pad);
  if (b) {
    detail::check_same(op, x, *b);
    SAGAN_CHECK(b->dim() == 1 && b->size(0) == co, "conv2d: bias of shape {} does not match weight {}",
                shape_str(b->shape()), shape_str(w.shape()));
  }
  const Conv2dGeom g{stride, pad};
  Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  std::optional<Tensor> bc;
  if (b) bc = b->detach().contiguous();
  Tensor out = Tensor::empty({x.size(0), co, ho, wo}, x.dtype(), x.device());
  if (out.numel() > 0) backend_of(x).conv2d(xc, wc, bc, out, g);
  std::vector<Tensor> inputs{x, w};
  if (b) inputs.push_back(*b);
  record(op, out, inputs, [g, xc = saved(xc), wc = saved(wc)](const Tensor& gy_in, const std::vector<bool>& needs) {
    Tensor gy = gy_in.contiguous();
    std::vector<Tensor> grads(needs.size());
    if (needs[0]) {
      grads[0] = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
      backend_of(gy).conv2d_backward_input(gy, wc, grads[0], g);
    }
    if (needs[1]) {
      grads[1] = Tensor::empty(wc.shape(), wc.dtype(), wc.device());
      backend_of(gy).conv2d_backward_weight(gy, xc, grads[1], g);
    }
    if (needs.size() > 2 && needs[2]) grads[2] = sum(gy, {0, 2, 3});
    return grads;
  });
  return out;
}

}  // namespace sagan
