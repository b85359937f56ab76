// Rectangular convolution on the CPU as one GEMM per chunk of images:
//   out_b (Co, P) = W (Co, K) @ cols_b (K, P),  K = Ci*kh*kw, P = Ho*Wo.
// Small feature maps (Inception's 17x17 and 8x8) are batched side by side so
// each GEMM is wide (kernels/cpu/image_chunks.h).
// The backward goes image by image: gW += gy_b cols_b^T, gcols = W^T gy_b
// then col2im into gx_b; the bias gradient is a sum in the front end.

#include <algorithm>
#include <cstring>
#include <vector>
#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/im2col.h"
#include "sagan/kernels/cpu/image_chunks.h"
#include "sagan/kernels/cpu/operand_rounding.h"

namespace sagan {

// The chunk plan (image_chunks.h), im2col and col2im (im2col.h).
using cpu::ChunkPlan;
using cpu::col2im;
using cpu::ConvWindow;
using cpu::im2col;
using cpu::plan_chunks;

namespace {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using DenseMap = Eigen::Map<Mat<T>>;
template <class T>
using CDenseMap = Eigen::Map<const Mat<T>>;

struct RectConvDims {
  int64_t B, Ci, H, W, Co, kh, kw, sh, sw, ph, pw, Ho, Wo;
  int64_t K() const { return Ci * kh * kw; }
  int64_t P() const { return Ho * Wo; }
  ConvWindow window() const { return {H, W, kh, kw, sh, sw, ph, pw, Ho, Wo}; }
};

constexpr int64_t kRectChunkCols = 1024;  // GEMM columns per chunk when images are small

}  // namespace

void CpuBackend::conv2d_rect(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                             Conv2dRectGeom g) {
  if (cpu::emulate_precision(x)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    conv2d_rect(cpu::rounded_operand(x), cpu::rounded_operand(w), std::nullopt, out, g);
    cpu::round_conv_result(out);
    if (bias) cpu::add_channel_bias(out, *bias);
    return;
  }
  const RectConvDims d{x.size(0),  x.size(1),  x.size(2), x.size(3), w.size(0),   w.size(2),  w.size(3),
                       g.stride_h, g.stride_w, g.pad_h,   g.pad_w,   out.size(2), out.size(3)};
  const int64_t K = d.K(), P = d.P();
  const ChunkPlan pl = plan_chunks(d.B, P, kRectChunkCols);
  dispatch_float(x.dtype(), "conv2d_rect", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* bp = bias ? bias->data<T>() : nullptr;
    T* yp = out.data<T>();
    CDenseMap<T> W(w.data<T>(), d.Co, K);
    std::vector<std::vector<T>> cols(static_cast<size_t>(scratch_slots(pl))),
        res(static_cast<size_t>(scratch_slots(pl)));
    for_chunks(pl, [&](int64_t b0, int64_t b1, int /*group*/, int slot) {
      const int64_t n = b1 - b0;
      auto& cb = cols[static_cast<size_t>(slot)];
      auto& rb = res[static_cast<size_t>(slot)];
      cb.resize(static_cast<size_t>(K * n * P));
      rb.resize(static_cast<size_t>(d.Co * n * P));
      im2col(d.window(), d.Ci, xp, b0, n, cb.data());
      DenseMap<T>(rb.data(), d.Co, n * P).noalias() = W * CDenseMap<T>(cb.data(), K, n * P);
      // res (Co, n, P) -> out (n, Co, P), adding the bias on the way.
      for (int64_t b = 0; b < n; ++b)
        for (int64_t co = 0; co < d.Co; ++co) {
          const T* src = rb.data() + (co * n + b) * P;
          T* dst = yp + ((b0 + b) * d.Co + co) * P;
          const T bc = bp ? bp[co] : T(0);
          for (int64_t q = 0; q < P; ++q) dst[q] = src[q] + bc;
        }
    });
  });
}

// The backward goes image by image (the evaluation networks never train; it
// exists so that the op has a gradient and a gradcheck).
void CpuBackend::conv2d_rect_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dRectGeom g) {
  if (cpu::emulate_precision(gy)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    conv2d_rect_backward_input(cpu::rounded_operand(gy), cpu::rounded_operand(w), gx, g);
    cpu::round_conv_result(gx);
    return;
  }
  const RectConvDims d{gx.size(0), gx.size(1), gx.size(2), gx.size(3), w.size(0),  w.size(2), w.size(3),
                       g.stride_h, g.stride_w, g.pad_h,    g.pad_w,    gy.size(2), gy.size(3)};
  const int64_t K = d.K(), P = d.P();
  const ConvWindow win = d.window();
  dispatch_float(gx.dtype(), "conv2d_rect_backward_input", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    CDenseMap<T> Wm(w.data<T>(), d.Co, K);
    std::vector<T> cols(static_cast<size_t>(K * P));
    std::fill(gx.data<T>(), gx.data<T>() + gx.numel(), T(0));
    for (int64_t b = 0; b < d.B; ++b) {
      CDenseMap<T> G(gy.data<T>() + b * d.Co * P, d.Co, P);
      DenseMap<T>(cols.data(), K, P).noalias() = Wm.transpose() * G;
      col2im(win, d.Ci, cols.data(), b, 1, gx.data<T>());
    }
  });
}

void CpuBackend::conv2d_rect_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dRectGeom g) {
  if (cpu::emulate_precision(gy)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    conv2d_rect_backward_weight(cpu::rounded_operand(gy), cpu::rounded_operand(x), gw, g);
    cpu::round_conv_result(gw);
    return;
  }
  const RectConvDims d{x.size(0),  x.size(1),  x.size(2), x.size(3), gw.size(0), gw.size(2), gw.size(3),
                       g.stride_h, g.stride_w, g.pad_h,   g.pad_w,   gy.size(2), gy.size(3)};
  const int64_t K = d.K(), P = d.P();
  const ConvWindow win = d.window();
  dispatch_float(gw.dtype(), "conv2d_rect_backward_weight", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    std::vector<T> cols(static_cast<size_t>(K * P));
    DenseMap<T>(gw.data<T>(), d.Co, K).setZero();
    for (int64_t b = 0; b < d.B; ++b) {
      CDenseMap<T> G(gy.data<T>() + b * d.Co * P, d.Co, P);
      im2col(win, d.Ci, x.data<T>(), b, 1, cols.data());
      DenseMap<T>(gw.data<T>(), d.Co, K).noalias() += G * CDenseMap<T>(cols.data(), K, P).transpose();
    }
  });
}

}  // namespace sagan
