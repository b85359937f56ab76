// conv2d_rect front end: NCHW convolution with a kh x kw kernel and separate
// stride and zero padding per axis (Inception's 1x7 / 7x1 / 1x3 / 3x1
// factorised convolutions); see core/ops_eval.h.
#include "core/ops/eval_common.h"
#include "core/ops_eval.h"
#include "kernels/cpu/eval_kernels.h"

namespace sagan {

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
  std::vector<Tensor> inputs{x, w};
  if (b) inputs.push_back(*b);
  const int64_t ho = (x.size(2) + 2 * g.pad_h - kh) / g.stride_h + 1;
  const int64_t wo = (x.size(3) + 2 * g.pad_w - kw) / g.stride_w + 1;
  Tensor xc = detail::cpu_contiguous(x), wc = detail::cpu_contiguous(w);
  std::optional<Tensor> bc;
  if (b) bc = detail::cpu_contiguous(*b);
  Tensor out = detail::run_on_cpu({x.size(0), w.size(0), ho, wo}, x.dtype(), x.device(),
                                  [&](Tensor& o) { cpu::conv2d_rect(xc, wc, bc, o, g); });
  record(op, out, inputs, [g, xc = saved(xc), wc = saved(wc)](const Tensor& gy, const std::vector<bool>& needs) {
    const Tensor gc = detail::cpu_contiguous(gy);
    std::vector<Tensor> grads(needs.size()), host(needs.size());
    const Shape shapes[3] = {xc.shape(), wc.shape(), {wc.size(0)}};
    for (size_t i = 0; i < needs.size(); ++i)
      if (needs[i]) host[i] = Tensor::empty(shapes[i], gy.dtype(), Device{});
    auto ptr = [&](size_t i) { return i < host.size() && host[i].defined() ? &host[i] : nullptr; };
    cpu::conv2d_rect_backward(xc, wc, gc, ptr(0), ptr(1), ptr(2), g);
    for (size_t i = 0; i < needs.size(); ++i)
      if (needs[i]) grads[i] = host[i].to(gy.device());
    return grads;
  });
  return out;
}

}  // namespace sagan
