// Winograd F(m x m, 3x3) for the CPU's 3x3, stride-1, pad-1 convolutions
// (all of SAGAN's 3x3 convs), with output tiles of m = 2 or 4 (`tile`):
// forward, input gradient and weight gradient each become (m+2)^2 GEMMs
// with 2.25x (m = 2) or 4x (m = 4) fewer multiply-adds than im2col.
// conv2d.cpp routes a conv here when conv3x3_path() (conv3x3_algo.h) says so.
#pragma once
#include <cstdint>
#include <optional>

#include "sagan/core/tensor.h"

namespace sagan::cpu {

// The Backend contract's conv2d kernels (NCHW, contiguous, F32 or F64),
// for k = 3, stride 1, pad 1 only (so output size = input size).
void winograd_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out, int tile);
void winograd_conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, int tile);
void winograd_conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, int tile);

}  // namespace sagan::cpu
