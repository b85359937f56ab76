// CPU kernels of the forward-only evaluation ops (core/ops_eval.h). They are
// plain functions rather than Backend methods because the Backend contract is
// shared with the CUDA backend; the front ends call them for CPU tensors.
// All tensors are contiguous NCHW, float32 or float64, already allocated;
// geometry has been checked by the front end.
#pragma once
#include <optional>

#include "core/ops_eval.h"

namespace sagan::cpu {

// out (B,Co,Ho,Wo) = conv(x (B,Ci,H,W), w (Co,Ci,kh,kw)) + bias.
void conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                 Conv2dRectGeom g);

enum class PoolMode { Max, AvgIncludePad, AvgExcludePad };
void pool2d(const Tensor& x, Tensor& out, PoolMode mode, int64_t kernel, int64_t stride, int64_t pad);
void adaptive_avg_pool2d(const Tensor& x, Tensor& out);

void resize_bilinear(const Tensor& x, Tensor& out);

}  // namespace sagan::cpu
