// Winograd F(2x2, 3x3) for the CPU's 3x3, stride-1, pad-1 convolutions (all
// of SAGAN's 3x3 convs): forward, input gradient and weight gradient each
// become 16 GEMMs with 2.25x fewer multiply-adds than im2col. conv2d.cpp
// routes a conv here when use_winograd() says so.
#pragma once
#include <cstdint>
#include <optional>

#include "core/tensor.h"

namespace sagan::cpu {

// Which algorithm 3x3/stride-1/pad-1 convs use. kAuto: Winograd when both
// channel counts are at least kWinogradMinChannels (below that the GEMMs are
// too thin for the transforms to pay off). The initial value comes from the
// environment variable SAGAN_CONV3X3 = auto | im2col | winograd (for A/B
// measurements without a rebuild); set_conv3x3_algo() overrides it
// process-wide (tests, benchmarks).
enum class Conv3x3Algo { kAuto, kIm2col, kWinograd };
void set_conv3x3_algo(Conv3x3Algo algo);
Conv3x3Algo conv3x3_algo();
inline constexpr int64_t kWinogradMinChannels = 16;

// Whether a conv with these channels and geometry runs Winograd.
bool use_winograd(int64_t ci, int64_t co, int64_t k, int64_t stride, int64_t pad);

// The Backend contract's conv2d kernels (NCHW, contiguous, F32 or F64),
// for k = 3, stride 1, pad 1 only (so output size = input size).
void winograd_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out);
void winograd_conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx);
void winograd_conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw);

}  // namespace sagan::cpu
