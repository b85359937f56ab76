// conv2d_rect front end: NCHW convolution with a kh x kw kernel and separate
// stride and zero padding per axis (Inception's 1x7 / 7x1 / 1x3 / 3x1
// factorised convolutions); see core/ops_vision.h. Like conv2d, the kernels
// get contiguous operands and the bias gradient is a sum.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"
#include "sagan/core/ops_vision.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

Tensor conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, Conv2dRectGeom g) {
  const char* op = "conv2d_rect";
  detail::check_same(op, x, w);
  detail::check_float(op, x);
  SAGAN_CHECK(x.dim() == 4, "conv2d_rect: input must be 4-d (B,C,H,W), got shape {}", shape_str(x.shape()));
  SAGAN_CHECK(w.dim() == 4, "conv2d_rect: weight must be 4-d (Co,Ci,kh,kw), got shape {}", shape_str(w.shape()));
  SAGAN_CHECK(x.size(1) == w.size(1), "conv2d_rect: input has {} channels but weight {} expects {} (input shape {})",
              x.size(1), shape_str(w.shape()), w.size(1), shape_str(x.shape()));
  SAGAN_CHECK(g.stride_h >= 1 && g.stride_w >= 1 && g.pad_h >= 0 && g.pad_w >= 0,
              "conv2d_rect: need strides >= 1 and pads >= 0, got stride ({}, {}) pad ({}, {})", g.stride_h, g.stride_w,
              g.pad_h, g.pad_w);
  const int64_t kh = w.size(2), kw = w.size(3);
  SAGAN_CHECK(kh >= 1 && kw >= 1 && x.size(2) + 2 * g.pad_h >= kh && x.size(3) + 2 * g.pad_w >= kw,
              "conv2d_rect: kernel {}x{} does not fit input {} with pad ({}, {})", kh, kw, shape_str(x.shape()),
              g.pad_h, g.pad_w);
  if (b) {
    detail::check_same(op, x, *b);
    SAGAN_CHECK(b->dim() == 1 && b->size(0) == w.size(0), "conv2d_rect: bias of shape {} does not match weight {}",
                shape_str(b->shape()), shape_str(w.shape()));
  }
  const int64_t ho = (x.size(2) + 2 * g.pad_h - kh) / g.stride_h + 1;
  const int64_t wo = (x.size(3) + 2 * g.pad_w - kw) / g.stride_w + 1;
  Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  std::optional<Tensor> bc;
  if (b) bc = b->detach().contiguous();
  Tensor out = Tensor::empty({x.size(0), w.size(0), ho, wo}, x.dtype(), x.device());
  if (out.numel() > 0) backend_of(x).conv2d_rect(xc, wc, bc, out, g);
  std::vector<Tensor> inputs{x, w};
  if (b) inputs.push_back(*b);
  record(op, out, inputs, [g, xc = saved(xc), wc = saved(wc)](const Tensor& gy_in, const std::vector<bool>& needs) {
    Tensor gy = gy_in.detach().contiguous();
    std::vector<Tensor> grads(needs.size());
    if (needs[0]) {
      grads[0] = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
      backend_of(gy).conv2d_rect_backward_input(gy, wc, grads[0], g);
    }
    if (needs[1]) {
      grads[1] = Tensor::empty(wc.shape(), wc.dtype(), wc.device());
      backend_of(gy).conv2d_rect_backward_weight(gy, xc, grads[1], g);
    }
    if (needs.size() > 2 && needs[2]) grads[2] = sum(gy, {0, 2, 3});
    return grads;
  });
  return out;
}

}  // namespace sagan
