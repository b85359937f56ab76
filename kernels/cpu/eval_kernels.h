// CPU kernels of the evaluation ops (core/ops_eval.h), forward and backward.
// They are plain functions rather than Backend methods because the Backend
// contract is shared with the CUDA backend; the front ends call them for CPU
// tensors. All tensors are contiguous NCHW, float32 or float64, already
// allocated; geometry has been checked by the front end. Backward kernels
// overwrite their outputs.
#pragma once
#include <optional>

#include "core/ops_eval.h"

namespace sagan::cpu {

// out (B,Co,Ho,Wo) = conv(x (B,Ci,H,W), w (Co,Ci,kh,kw)) + bias.
void conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out, Conv2dRectGeom g);
// gy (B,Co,Ho,Wo) -> whichever of gx (x's shape), gw (w's shape), gb (Co) is given.
void conv2d_rect_backward(const Tensor& x, const Tensor& w, const Tensor& gy, Tensor* gx, Tensor* gw, Tensor* gb,
                          Conv2dRectGeom g);

enum class PoolMode { Max, AvgIncludePad, AvgExcludePad };
void pool2d(const Tensor& x, Tensor& out, PoolMode mode, int64_t kernel, int64_t stride, int64_t pad);
// Max: each window's gradient goes to its first maximum (the first NaN when
// there is one), the cell the forward picked. x is needed for Max only.
void pool2d_backward(const Tensor& x, const Tensor& gy, Tensor& gx, PoolMode mode, int64_t kernel, int64_t stride,
                     int64_t pad);
void adaptive_avg_pool2d(const Tensor& x, Tensor& out);
void adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx);

void resize_bilinear(const Tensor& x, Tensor& out);
void resize_bilinear_backward(const Tensor& gy, Tensor& gx);

}  // namespace sagan::cpu
