// Direct 3x3/stride-1/pad-1 convolution loops (conv2d_direct.h). With the
// input copied once into a zero-bordered buffer, every output row segment
// of kLanes elements is a sum of 9 * Cin shifted input segments times
// scalars, accumulated for up to 4 output channels and 2 output rows at
// once in registers: a load feeds up to 8 multiply-adds, and nothing but
// the result is stored.
//   forward          y[o][r][c]   = sum_i,ky,kx w[o][i][ky][kx] * xpad[i][r+ky][c+kx]
//   backward-input   gx[i][r][c]  = the same loop over gy padded, with the
//                    kernel rotated 180 degrees and in/out swapped
//   backward-weight  gw[o][i][ky][kx] = sum_b,r,c gy[b][o][r][c] * xpad[b][i][r+ky][c+kx]
// (xpad[i][r][c] = x[i][r-1][c-1], zero outside). Forward and input
// gradient split images over threads, the weight gradient input channels:
// each output element has one thread and one order of summation.
#include "sagan/kernels/cpu/conv2d_direct.h"
#include "sagan/kernels/cpu/worth_parallel.h"

#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace sagan::cpu {

namespace {

// The vector registers -march gives the compiler: bytes and count. A row
// segment is one register of T; the partial sums must fit the registers.
#if defined(__AVX512F__)
constexpr int64_t kVecBytes = 64;
constexpr int kVecRegs = 32;
#elif defined(__AVX__)
constexpr int64_t kVecBytes = 32;
constexpr int kVecRegs = 16;
#else
constexpr int64_t kVecBytes = 16;
constexpr int kVecRegs = 16;
#endif
template <class T>
constexpr int64_t kLanes = kVecBytes / static_cast<int64_t>(sizeof(T));
constexpr int kMaxBlock = 4;  // output channels summed at once

// Width of a padded row: the image's columns rounded up to whole segments,
// plus the 2 border columns a 3-wide window reads beyond them.
template <class T>
int64_t padded_width(int64_t w) {
  return (w + kLanes<T> - 1) / kLanes<T> * kLanes<T> + 2;
}

// src (C, H, W) -> dst (H+2, C, ws): row-interleaved so that one output row
// reads 3 * C contiguous padded rows; zero border and slack.
template <class T>
void pad_rows(const T* src, int64_t C, int64_t H, int64_t W, int64_t ws, T* dst) {
  std::fill(dst, dst + (H + 2) * C * ws, T(0));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < H; ++r)
      std::copy(src + (c * H + r) * W, src + (c * H + r + 1) * W, dst + ((r + 1) * C + c) * ws + 1);
}

// out[j] (H, W) planes, j < N, plane stride `plane`:
//   out[j][r][c] = init[j] + sum_i,ky,kx wk[(i*9 + ky*3 + kx)*N + j] * in[r+ky][i][c+kx]
// in: (H+2, Cin, ws) from pad_rows. Two output rows at once where there
// are two: input rows r+1 and r+2 feed both, so 12 loads a channel serve
// 18 N multiply-adds (one row at a time: 9 loads for 9 N).
template <class T, int N>
void rows_block(const T* in, int64_t Cin, int64_t H, int64_t W, int64_t ws, const T* wk, const T* init, T* out,
                int64_t plane) {
  constexpr int64_t L = kLanes<T>;
  for (int64_t r = 0; r < H; r += 2) {
    const bool two = r + 1 < H;
    for (int64_t c0 = 0; c0 < W; c0 += L) {
      T acc0[N][L], acc1[N][L];
      for (int j = 0; j < N; ++j)
        for (int64_t l = 0; l < L; ++l) acc0[j][l] = acc1[j][l] = init ? init[j] : T(0);
      for (int64_t i = 0; i < Cin; ++i) {
        const T* wi = wk + i * 9 * N;
        const T* row0 = in + (r * Cin + i) * ws + c0;  // input row r: tap row 0 of output row r
        const T* row1 = row0 + Cin * ws;
        const T* row2 = row1 + Cin * ws;
        if (two) {
          const T* row3 = row2 + Cin * ws;  // tap row 2 of output row r + 1
          for (int kx = 0; kx < 3; ++kx) {
            const T *w0 = wi + kx * N, *w1 = wi + (3 + kx) * N, *w2 = wi + (6 + kx) * N;
            for (int64_t l = 0; l < L; ++l) {
              const T s0 = row0[kx + l], s1 = row1[kx + l], s2 = row2[kx + l], s3 = row3[kx + l];
              for (int j = 0; j < N; ++j) {
                acc0[j][l] += w0[j] * s0 + w1[j] * s1 + w2[j] * s2;
                acc1[j][l] += w0[j] * s1 + w1[j] * s2 + w2[j] * s3;
              }
            }
          }
        } else {
          for (int kx = 0; kx < 3; ++kx) {
            const T *w0 = wi + kx * N, *w1 = wi + (3 + kx) * N, *w2 = wi + (6 + kx) * N;
            for (int64_t l = 0; l < L; ++l) {
              const T s0 = row0[kx + l], s1 = row1[kx + l], s2 = row2[kx + l];
              for (int j = 0; j < N; ++j) acc0[j][l] += w0[j] * s0 + w1[j] * s1 + w2[j] * s2;
            }
          }
        }
      }
      const int64_t n = std::min(L, W - c0);
      for (int j = 0; j < N; ++j) {
        std::copy(acc0[j], acc0[j] + n, out + j * plane + r * W + c0);
        if (two) std::copy(acc1[j], acc1[j] + n, out + j * plane + (r + 1) * W + c0);
      }
    }
  }
}

// f(std::integral_constant<int, n>{}) for a block of n <= kMaxBlock
// outputs: the kernels take the block size as a template parameter.
template <class F>
void with_block_size(int n, F&& f) {
  switch (n) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    default:
      return f(std::integral_constant<int, 4>{});
  }
}

// Packs the kernel for rows_block, output blocks of kMaxBlock:
// wk[blk][i][tap][j] = weight(blk * kMaxBlock + j, i, tap), tap = ky*3 + kx,
// with the last block's N = its own size.
template <class T, class Weight>
std::vector<T> pack_kernel(int64_t outs, int64_t ins, Weight weight) {
  std::vector<T> wk(static_cast<size_t>(outs * ins * 9));
  T* p = wk.data();
  for (int64_t o0 = 0; o0 < outs; o0 += kMaxBlock) {
    const int64_t n = std::min<int64_t>(kMaxBlock, outs - o0);
    for (int64_t i = 0; i < ins; ++i)
      for (int tap = 0; tap < 9; ++tap)
        for (int64_t j = 0; j < n; ++j) *p++ = weight(o0 + j, i, tap);
  }
  return wk;
}

// For each image b: pad its Cin planes of `in`, then every block of the
// `outs` output planes; images over threads.
template <class T>
void conv_images(const T* in, int64_t B, int64_t Cin, int64_t outs, int64_t H, int64_t W, const std::vector<T>& wk,
                 const T* bias, T* out) {
  const int64_t ws = padded_width<T>(W), hw = H * W;
#pragma omp parallel if (B > 1 && worth_parallel(B * (Cin + outs) * hw))
  {
    std::vector<T> pad(static_cast<size_t>((H + 2) * Cin * ws));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      pad_rows(in + b * Cin * hw, Cin, H, W, ws, pad.data());
      for (int64_t o0 = 0; o0 < outs; o0 += kMaxBlock) {
        const int n = static_cast<int>(std::min<int64_t>(kMaxBlock, outs - o0));
        with_block_size(n, [&](auto N) {
          rows_block<T, decltype(N)::value>(pad.data(), Cin, H, W, ws, wk.data() + o0 * Cin * 9,
                                            bias ? bias + o0 : nullptr, out + (b * outs + o0) * hw, hw);
        });
      }
    }
  }
}

// gw[o][i][ky][kx] for o in [o0, o0 + N), one input channel i:
// xi (B, H+2, ws) is image b's padded plane i, gy (B, Co, H, W) the output
// gradient. KY kernel rows per pass over the data: all 3 when the N * 9
// partial sums, N gradient segments and one input segment fit the
// registers (AVX-512: N <= 3), else one (3 passes). A row's last, partial
// segment runs only its columns: a lane past the image would multiply a
// zero gradient by a real input, and 0 * inf is NaN where im2col has none.
template <class T, int N, int KY>
void weight_block(const T* xi, const T* gy, int64_t B, int64_t Co, int64_t H, int64_t W, int64_t ws, int64_t o0,
                  int64_t i, int64_t Ci, T* gw) {
  constexpr int64_t L = kLanes<T>;
  for (int ky0 = 0; ky0 < 3; ky0 += KY) {
    // Lanes sum one image in T, images add up in double: a float sum over
    // a whole batch of large images would grow its rounding with B * H * W.
    double total[N][KY][3] = {};
    for (int64_t b = 0; b < B; ++b) {
      T acc[N][KY][3][L] = {};
      T tail[N][KY][3] = {};
      const int64_t whole = W / L * L;  // columns in whole segments
      for (int64_t r = 0; r < H; ++r) {
        const T* xrow = xi + (b * (H + 2) + r + ky0) * ws;
        const T* grow = gy + ((b * Co + o0) * H + r) * W;
        for (int64_t c0 = 0; c0 < whole; c0 += L)
          for (int64_t l = 0; l < L; ++l) {
            T g[N];
            for (int j = 0; j < N; ++j) g[j] = grow[j * H * W + c0 + l];
            for (int ky = 0; ky < KY; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const T s = xrow[ky * ws + c0 + kx + l];
                for (int j = 0; j < N; ++j) acc[j][ky][kx][l] += g[j] * s;
              }
          }
      }
      // The last columns, fewer than a segment, in a loop of their own:
      // inside the one above they would keep acc out of the registers.
      for (int64_t r = 0; r < H && whole < W; ++r) {
        const T* xrow = xi + (b * (H + 2) + r + ky0) * ws;
        const T* grow = gy + ((b * Co + o0) * H + r) * W;
        for (int64_t c = whole; c < W; ++c)
          for (int j = 0; j < N; ++j)
            for (int ky = 0; ky < KY; ++ky)
              for (int kx = 0; kx < 3; ++kx) tail[j][ky][kx] += grow[j * H * W + c] * xrow[ky * ws + c + kx];
      }
      for (int j = 0; j < N; ++j)
        for (int ky = 0; ky < KY; ++ky)
          for (int kx = 0; kx < 3; ++kx)
            for (int64_t l = 0; l <= L; ++l)
              total[j][ky][kx] += static_cast<double>(l < L ? acc[j][ky][kx][l] : tail[j][ky][kx]);
    }
    for (int j = 0; j < N; ++j)
      for (int ky = 0; ky < KY; ++ky)
        for (int kx = 0; kx < 3; ++kx)
          gw[((o0 + j) * Ci + i) * 9 + (ky0 + ky) * 3 + kx] = static_cast<T>(total[j][ky][kx]);
  }
}

template <int N>
constexpr int kWeightRows = N * 9 + N + 1 <= kVecRegs ? 3 : 1;

void check_direct_geometry(const char* op, const Tensor& a, const Tensor& w) {
  SAGAN_CHECK(w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3, "{}: the direct path needs a 3x3 kernel, got weight {}",
              op, shape_str(w.shape()));
  SAGAN_CHECK(a.dim() == 4 && a.is_contiguous() && w.is_contiguous(), "{}: expected contiguous 4-d tensors, got {}", op,
              shape_str(a.shape()));
}

}  // namespace

void direct_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out) {
  check_direct_geometry("conv2d", x, w);
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = w.size(0);
  dispatch_float(x.dtype(), "conv2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = w.data<T>();
    const std::vector<T> wk =
        pack_kernel<T>(Co, Ci, [&](int64_t o, int64_t i, int tap) { return wp[(o * Ci + i) * 9 + tap]; });
    conv_images<T>(x.data<T>(), B, Ci, Co, H, W, wk, bias ? bias->data<T>() : nullptr, out.data<T>());
  });
}

void direct_conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx) {
  check_direct_geometry("conv2d_backward_input", gy, w);
  const int64_t B = gy.size(0), Co = gy.size(1), H = gy.size(2), W = gy.size(3), Ci = w.size(1);
  dispatch_float(gy.dtype(), "conv2d_backward_input", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = w.data<T>();
    // gx = conv(gy, w') with w'[i][o][tap] = w[o][i][8 - tap] (rotated 180).
    const std::vector<T> wk =
        pack_kernel<T>(Ci, Co, [&](int64_t i, int64_t o, int tap) { return wp[(o * Ci + i) * 9 + 8 - tap]; });
    conv_images<T>(gy.data<T>(), B, Co, Ci, H, W, wk, nullptr, gx.data<T>());
  });
}

void direct_conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw) {
  check_direct_geometry("conv2d_backward_weight", x, gw);
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = gy.size(1);
  dispatch_float(gy.dtype(), "conv2d_backward_weight", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* gyp = gy.data<T>();
    T* gwp = gw.data<T>();
    const int64_t ws = padded_width<T>(W), hw = H * W;
#pragma omp parallel if (Ci > 1 && worth_parallel(B * Ci * hw))
    {
      std::vector<T> xi(static_cast<size_t>(B * (H + 2) * ws));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < Ci; ++i) {
        for (int64_t b = 0; b < B; ++b) pad_rows(xp + (b * Ci + i) * hw, 1, H, W, ws, xi.data() + b * (H + 2) * ws);
        for (int64_t o0 = 0; o0 < Co; o0 += kMaxBlock) {
          const int n = static_cast<int>(std::min<int64_t>(kMaxBlock, Co - o0));
          with_block_size(n, [&](auto N) {
            weight_block<T, decltype(N)::value, kWeightRows<decltype(N)::value>>(xi.data(), gyp, B, Co, H, W, ws, o0, i,
                                                                                 Ci, gwp);
          });
        }
      }
    }
  });
}

}  // namespace sagan::cpu
