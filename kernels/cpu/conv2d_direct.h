// Direct 3x3, stride-1, pad-1 convolutions for few output channels (the
// generator's 256->3 head): im2col's GEMM would be Co rows tall, far below
// peak, and would copy the input nine times. Here every loop runs along an
// image row with the partial sums in vector registers. conv2d.cpp routes a
// conv here when conv3x3_path() (conv3x3_algo.h) says so; any channel
// counts work (outputs in blocks of 4), it is only fast for few outputs.
#pragma once
#include <optional>

#include "sagan/core/tensor.h"

namespace sagan::cpu {

// The Backend contract's conv2d kernels (NCHW, contiguous, F32 or F64),
// for k = 3, stride 1, pad 1 only (so output size = input size). Each
// output element is summed by one thread in a fixed order: the same bits
// for any thread count.
void direct_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out);
void direct_conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx);
void direct_conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw);

}  // namespace sagan::cpu
