// Which algorithm the CPU's 3x3, stride-1, pad-1 convolutions (all of
// SAGAN's 3x3 convs) use; conv2d.cpp asks conv3x3_path() for every conv and
// routes it to im2col + GEMM (conv2d.cpp), Winograd F(2x2, 3x3) or
// F(4x4, 3x3) (conv2d_winograd.cpp) or the direct loops (conv2d_direct.cpp).
#pragma once
#include <cstdint>
#include <string>

namespace sagan::cpu {

// kAuto picks by the channel counts (conv3x3_path). The initial value comes
// from the environment variable SAGAN_CONV3X3 = auto | im2col | winograd
// (F(2x2, 3x3)) | winograd4 (F(4x4, 3x3)) | direct (for A/B measurements
// without a rebuild; another value is an error naming the variable);
// set_conv3x3_algo() overrides it process-wide (tests, benchmarks).
enum class Conv3x3Algo { kAuto, kIm2col, kWinograd, kWinograd4, kDirect };
void set_conv3x3_algo(Conv3x3Algo algo);
Conv3x3Algo conv3x3_algo();
// "auto", "im2col", "winograd", "winograd4", "direct" and back; a bad name throws an
// Error naming `what` and the choices.
const char* conv3x3_algo_name(Conv3x3Algo algo);
Conv3x3Algo parse_conv3x3_algo(const std::string& text, const std::string& what);

// Winograd needs both channel counts at least this large: below it the
// transforms cost more than the per-position GEMMs save (measured for
// F(2x2, 3x3); auto then takes F(4x4, 3x3), faster at every SAGAN shape
// measured, docs/benchmarks.md).
inline constexpr int64_t kWinogradMinChannels = 16;
// The direct loops take the convs with fewer outputs than Winograd needs:
// im2col's GEMM is then only Co rows tall and far below peak (the
// generator's 3x3 256->3 head; measured from 1 to 12 outputs in
// docs/benchmarks.md).
enum class ConvPath { kIm2col, kWinograd, kWinograd4, kDirect };

// The path for a conv with these channels and geometry on h x w images:
// only 3x3/stride-1/pad-1 convs leave im2col. Of the two Winograd tile
// sizes auto takes the one with fewer multiplies for the image size: 36 per
// 4x4 output tile against 16 per 2x2 one, so F(2x2) only for images 2 or
// fewer pixels tall or wide (ties, 5x5 and 6x6, go to F(4x4)).
ConvPath conv3x3_path(int64_t ci, int64_t co, int64_t k, int64_t stride, int64_t pad, int64_t h, int64_t w);

}  // namespace sagan::cpu
