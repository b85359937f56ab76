// The CPU backend's emulation of reduced-precision matrix products
// (core/matmul_precision.h): bmm and the convolutions round their float32
// operands as the GPU's tensor cores read them (bit for bit,
// core/reduced_precision.h) and compute in float32 from there; in Bf16 a
// convolution's result is rounded to bf16 too, as cuDNN's bf16 convolutions
// write it, and its bias is added afterwards in float32, as the CUDA backend
// adds it. Each entry point starts with
//
//   if (cpu::emulate_precision(x)) {
//     cpu::EmulationScope scope;   // the nested call computes plainly
//     conv2d(cpu::rounded_operand(x), cpu::rounded_operand(w), std::nullopt, out, g);
//     cpu::round_conv_result(out);
//     ...
//     return;
//   }
//
// Fp32 and float64 take the plain path without a copy.
#pragma once
#include "sagan/core/tensor.h"

namespace sagan::cpu {

// Whether an entry point given this float operand must emulate: float32, a
// precision other than Fp32, and not already inside an EmulationScope.
bool emulate_precision(const Tensor& operand);

// Marks this thread as inside an emulated call (nested entry points compute
// plainly on the rounded operands they are given).
class EmulationScope {
 public:
  EmulationScope();
  ~EmulationScope();
  EmulationScope(const EmulationScope&) = delete;
  EmulationScope& operator=(const EmulationScope&) = delete;

 private:
  bool prev_;
};

// A dense copy of float32 t rounded to the current matmul precision.
Tensor rounded_operand(const Tensor& t);

// Bf16 only: rounds a float32 convolution result to bf16 in place.
void round_conv_result(Tensor& out);

// out (B, C, H, W) += bias[c], in float32.
void add_channel_bias(Tensor& out, const Tensor& bias);

}  // namespace sagan::cpu
