// Ops that the evaluation feature networks need (Inception-v3 as ported by
// pytorch-fid) and SAGAN itself does not: rectangular convolution, general
// pooling windows, adaptive average pooling and bilinear resizing. Each has a
// backward rule (float64 gradchecks in tests/test_eval_ops.cpp).
//
// They are not part of the Backend contract (core/backend.h), so each has a
// CPU kernel in kernels/cpu/<name>.cpp (declared in kernels/cpu/eval_kernels.h)
// that the front end calls directly. Tensors on another device are copied to
// the CPU, computed there and copied back (forward and backward): correct but
// slow, acceptable for the few layers of Inception that need them (its
// square convolutions use conv2d and stay on the device).
#pragma once
#include <optional>

#include "core/tensor.h"

namespace sagan {

struct Conv2dRectGeom {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// x (B,Ci,H,W), w (Co,Ci,kh,kw), b (Co) -> (B,Co,Ho,Wo),
// Ho = (H + 2 pad_h - kh) / stride_h + 1 (likewise Wo); zero padding.
Tensor conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b = std::nullopt,
                   Conv2dRectGeom g = {});

// k x k windows, PyTorch semantics with ceil_mode=False: out = (H + 2 pad - k) / stride + 1.
// Max pooling pads with -inf (pad <= k / 2, as PyTorch requires); NaNs propagate.
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad = 0);
// count_include_pad: divide by k*k (true) or by the number of in-image cells (false).
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad = 0, bool count_include_pad = true);

// Output cell (i, j) averages rows [floor(i H / oh), ceil((i+1) H / oh)) and
// the columns likewise (PyTorch's adaptive_avg_pool2d).
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// Bilinear resampling with half-pixel centers (PyTorch interpolate,
// mode='bilinear', align_corners=False, antialias=False), any size ratio.
Tensor resize_bilinear(const Tensor& x, int64_t out_h, int64_t out_w);

}  // namespace sagan
