// Vision ops beyond SAGAN's own: the ones the evaluation feature networks
// need (Inception-v3 as ported by pytorch-fid, the Fashion-MNIST classifier):
// rectangular convolution, general pooling windows, adaptive average pooling
// and bilinear resizing. Each has a backward rule, a CPU kernel and a float64
// gradcheck (tests/ops/op_cases.cpp); on CUDA, conv2d_rect runs on cuDNN,
// the pools and the resize on kernels of their own (kernels/cuda/pool2d.cu,
// resize_bilinear.cu).
#pragma once
#include <optional>

#include "sagan/core/backend.h"
#include "sagan/core/tensor.h"

namespace sagan {

// x (B,Ci,H,W), w (Co,Ci,kh,kw), b (Co) -> (B,Co,Ho,Wo),
// Ho = (H + 2 pad_h - kh) / stride_h + 1 (likewise Wo); zero padding.
// (core/ops/conv2d_rect.cpp)
Tensor conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b = std::nullopt,
                   Conv2dRectGeom g = {});

// k x k windows, PyTorch semantics with ceil_mode=False: out = (H + 2 pad - k) / stride + 1.
// Max pooling pads with -inf (pad <= k / 2, as PyTorch requires); NaNs propagate.
// (core/ops/pool2d.cpp)
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad = 0);
// count_include_pad: divide by k*k (true) or by the number of in-image cells (false).
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad = 0, bool count_include_pad = true);

// Output cell (i, j) averages rows [floor(i H / oh), ceil((i+1) H / oh)) and
// the columns likewise (PyTorch's adaptive_avg_pool2d). (core/ops/pool2d.cpp)
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// Bilinear resampling with half-pixel centers (PyTorch interpolate,
// mode='bilinear', align_corners=False, antialias=False), any size ratio.
// (core/ops/resize_bilinear.cpp)
Tensor resize_bilinear(const Tensor& x, int64_t out_h, int64_t out_w);

}  // namespace sagan
