// conv2d on the CPU as GEMMs. With K = Ci*k*k and P = Ho*Wo per image:
//   forward          out_b (Co,P) = W (Co,K) @ cols_b (K,P)
//   backward-input   cols_b (K,P) = W^T @ gy_b (Co,P), then col2im into gx_b
//   backward-weight  gW (Co,K)   += gy_b @ cols_b^T
// A 1x1 stride-1 unpadded conv has cols_b = x_b, so it skips im2col. 3x3
// stride-1 pad-1 convs go to Winograd F(4x4, 3x3) when both channel counts
// are wide (conv2d_winograd.cpp) and to direct loops when there are few
// outputs (conv2d_direct.cpp), as conv3x3_path() decides. Images
// go in chunks: small feature maps are batched side by side in one buffer so
// that each GEMM is wide enough to run near peak. Chunks run in parallel in
// groups fixed by the shapes (image_chunks.h), each GEMM single-threaded, so
// the results do not depend on the thread count.

#include <algorithm>
#include <cstring>
#include <vector>
#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/conv2d_direct.h"
#include "sagan/kernels/cpu/conv2d_winograd.h"
#include "sagan/kernels/cpu/conv3x3_algo.h"
#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/im2col.h"
#include "sagan/kernels/cpu/image_chunks.h"
#include "sagan/kernels/cpu/operand_rounding.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

namespace {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapR = Eigen::Map<Mat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using CMapR = Eigen::Map<const Mat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
// A row-major (rows, cols) buffer read as its transpose (cols, rows).
template <class T>
using CMapT = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>, Eigen::Unaligned,
                         Eigen::OuterStride<>>;

template <class T>
MapR<T> mat(T* p, int64_t rows, int64_t cols) {
  return MapR<T>(p, rows, cols, Eigen::OuterStride<>(cols));
}
template <class T>
CMapR<T> cmat(const T* p, int64_t rows, int64_t cols) {
  return CMapR<T>(p, rows, cols, Eigen::OuterStride<>(cols));
}
// The transpose (cols, rows) of the row-major (rows, cols) matrix at p.
template <class T>
CMapT<T> cmat_t(const T* p, int64_t rows, int64_t cols) {
  return CMapT<T>(p, cols, rows, Eigen::OuterStride<>(cols));
}

struct ConvDims {
  int64_t B, Ci, H, W, Co, k, s, p, Ho, Wo;
  int64_t K() const { return Ci * k * k; }
  int64_t P() const { return Ho * Wo; }
  bool pointwise() const { return k == 1 && s == 1 && p == 0; }
};

ConvDims conv_dims(const Tensor& x, int64_t co, int64_t k, const Tensor& y, Conv2dGeom g) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), co, k, g.stride, g.pad, y.size(2), y.size(3)};
}

// Images smaller than this many GEMM columns are batched side by side up to
// this width. Measured at SAGAN's shapes on 2 cores: 256 matches one image
// per GEMM and beats it for the 8x8 weight gradient (GEMM depth 64 is too
// shallow); 512 and wider are 5-15% slower (the buffers leave L2).
constexpr int64_t kIm2colChunkCols = 256;

cpu::ConvWindow window_of(const ConvDims& d) { return {d.H, d.W, d.k, d.k, d.s, d.s, d.p, d.p, d.Ho, d.Wo}; }

// Images [b0, b0+n) of t (B, C, P) side by side: buf (C, n*P).
template <class T>
void gather(const T* t, int64_t C, int64_t P, int64_t b0, int64_t n, T* buf) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(buf + (c * n + i) * P, t + ((b0 + i) * C + c) * P, static_cast<size_t>(P) * sizeof(T));
}

// The inverse of gather.
template <class T>
void scatter(const T* buf, int64_t C, int64_t P, int64_t b0, int64_t n, T* t) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(t + ((b0 + i) * C + c) * P, buf + (c * n + i) * P, static_cast<size_t>(P) * sizeof(T));
}

// Per-thread scratch: im2col columns and a gathered/scattered block.
template <class T>
struct Scratch {
  std::vector<T> cols, block;
};

}  // namespace

void CpuBackend::conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out,
                        Conv2dGeom g) {
  if (cpu::emulate_precision(x)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    conv2d(cpu::rounded_operand(x), cpu::rounded_operand(w), std::nullopt, out, g);
    cpu::round_conv_result(out);
    if (bias) cpu::add_channel_bias(out, *bias);
    return;
  }
  const ConvDims d = conv_dims(x, w.size(0), w.size(2), out, g);
  switch (cpu::conv3x3_path(d.Ci, d.Co, d.k, d.s, d.p, d.H, d.W)) {
    case cpu::ConvPath::kWinograd:
      return cpu::winograd_conv2d(x, w, bias, out, 2);
    case cpu::ConvPath::kWinograd4:
      return cpu::winograd_conv2d(x, w, bias, out, 4);
    case cpu::ConvPath::kDirect:
      return cpu::direct_conv2d(x, w, bias, out);
    case cpu::ConvPath::kIm2col:
      break;
  }
  const cpu::ChunkPlan pl = cpu::plan_chunks(d.B, d.P(), kIm2colChunkCols);
  dispatch_float(x.dtype(), "conv2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* wp = w.data<T>();
    const T* bp = bias ? bias->data<T>() : nullptr;
    T* yp = out.data<T>();
    const int64_t K = d.K(), P = d.P(), Co = d.Co;
    std::vector<Scratch<T>> scratch(static_cast<size_t>(cpu::scratch_slots(pl)));
    cpu::for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
      const int64_t n = b1 - b0;
      Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
      const T* rhs;  // (K, n*P)
      if (d.pointwise() && n == 1) {
        rhs = xp + b0 * d.Ci * P;
      } else if (d.pointwise()) {
        gather(xp, d.Ci, P, b0, n, cpu::grow_scratch(sc.cols, K * n * P));
        rhs = sc.cols.data();
      } else {
        cpu::im2col(window_of(d), d.Ci, xp, b0, n, cpu::grow_scratch(sc.cols, K * n * P));
        rhs = sc.cols.data();
      }
      T* res = n == 1 ? yp + b0 * Co * P : cpu::grow_scratch(sc.block, Co * n * P);
      mat(res, Co, n * P).noalias() = cmat(wp, Co, K) * cmat(rhs, K, n * P);
      if (n > 1) scatter(res, Co, P, b0, n, yp);
      if (bp)
        for (int64_t i = b0; i < b1; ++i)
          for (int64_t c = 0; c < Co; ++c) {
            T* row = yp + (i * Co + c) * P;
            const T bc = bp[c];
            for (int64_t q = 0; q < P; ++q) row[q] += bc;
          }
    });
  });
}

void CpuBackend::conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, Conv2dGeom g) {
  if (cpu::emulate_precision(gy)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    conv2d_backward_input(cpu::rounded_operand(gy), cpu::rounded_operand(w), gx, g);
    cpu::round_conv_result(gx);
    return;
  }
  const ConvDims d = conv_dims(gx, w.size(0), w.size(2), gy, g);
  switch (cpu::conv3x3_path(d.Ci, d.Co, d.k, d.s, d.p, d.H, d.W)) {
    case cpu::ConvPath::kWinograd:
      return cpu::winograd_conv2d_backward_input(gy, w, gx, 2);
    case cpu::ConvPath::kWinograd4:
      return cpu::winograd_conv2d_backward_input(gy, w, gx, 4);
    case cpu::ConvPath::kDirect:
      return cpu::direct_conv2d_backward_input(gy, w, gx);
    case cpu::ConvPath::kIm2col:
      break;
  }
  const cpu::ChunkPlan pl = cpu::plan_chunks(d.B, d.P(), kIm2colChunkCols);
  dispatch_float(gy.dtype(), "conv2d_backward_input", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gyp = gy.data<T>();
    const T* wp = w.data<T>();
    T* gxp = gx.data<T>();
    const int64_t K = d.K(), P = d.P(), Co = d.Co, HW = d.H * d.W;
    std::vector<Scratch<T>> scratch(static_cast<size_t>(cpu::scratch_slots(pl)));
    cpu::for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
      const int64_t n = b1 - b0;
      Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
      const T* rhs = gyp + b0 * Co * P;  // (Co, n*P)
      if (n > 1) {
        gather(gyp, Co, P, b0, n, cpu::grow_scratch(sc.block, Co * n * P));
        rhs = sc.block.data();
      }
      if (d.pointwise()) {
        T* res = n == 1 ? gxp + b0 * d.Ci * HW : cpu::grow_scratch(sc.cols, K * n * P);
        mat(res, K, n * P).noalias() = cmat_t(wp, Co, K) * cmat(rhs, Co, n * P);
        if (n > 1) scatter(res, d.Ci, P, b0, n, gxp);
        return;
      }
      T* cols = cpu::grow_scratch(sc.cols, K * n * P);
      mat(cols, K, n * P).noalias() = cmat_t(wp, Co, K) * cmat(rhs, Co, n * P);
      std::fill(gxp + b0 * d.Ci * HW, gxp + b1 * d.Ci * HW, T(0));
      cpu::col2im(window_of(d), d.Ci, cols, b0, n, gxp);
    });
  });
}

void CpuBackend::conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, Conv2dGeom g) {
  if (cpu::emulate_precision(gy)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    conv2d_backward_weight(cpu::rounded_operand(gy), cpu::rounded_operand(x), gw, g);
    cpu::round_conv_result(gw);
    return;
  }
  const ConvDims d = conv_dims(x, gw.size(0), gw.size(2), gy, g);
  switch (cpu::conv3x3_path(d.Ci, d.Co, d.k, d.s, d.p, d.H, d.W)) {
    case cpu::ConvPath::kWinograd:
      return cpu::winograd_conv2d_backward_weight(gy, x, gw, 2);
    case cpu::ConvPath::kWinograd4:
      return cpu::winograd_conv2d_backward_weight(gy, x, gw, 4);
    case cpu::ConvPath::kDirect:
      return cpu::direct_conv2d_backward_weight(gy, x, gw);
    case cpu::ConvPath::kIm2col:
      break;
  }
  const cpu::ChunkPlan pl = cpu::plan_chunks(d.B, d.P(), kIm2colChunkCols);
  dispatch_float(gy.dtype(), "conv2d_backward_weight", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gyp = gy.data<T>();
    const T* xp = x.data<T>();
    T* gwp = gw.data<T>();
    const int64_t K = d.K(), P = d.P(), Co = d.Co;
    // Each group sums its images into its own (Co, K) partial (group 0's is
    // gw itself); the partials are added at the end in group order, so
    // nothing races and the sums do not depend on the thread count.
    std::vector<cpu::PartialSum<T>> partial(static_cast<size_t>(pl.groups));
    bool gw_written = false;  // group 0's partial; only group 0's thread sets it
    std::vector<Scratch<T>> scratch(static_cast<size_t>(cpu::scratch_slots(pl)));
    cpu::for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
      const int64_t n = b1 - b0;
      Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
      const T* lhs = gyp + b0 * Co * P;  // (Co, n*P)
      if (n > 1) {
        gather(gyp, Co, P, b0, n, cpu::grow_scratch(sc.block, Co * n * P));
        lhs = sc.block.data();
      }
      const T* cols;  // (K, n*P)
      if (d.pointwise() && n == 1) {
        cols = xp + b0 * d.Ci * P;  // x itself (an empty x, all padding, never gets here)
      } else if (d.pointwise()) {
        gather(xp, d.Ci, P, b0, n, cpu::grow_scratch(sc.cols, K * n * P));
        cols = sc.cols.data();
      } else {
        cpu::im2col(window_of(d), d.Ci, xp, b0, n, cpu::grow_scratch(sc.cols, K * n * P));
        cols = sc.cols.data();
      }
      cpu::PartialSum<T>& own = partial[static_cast<size_t>(group)];
      const bool first = group == 0 ? !gw_written : !own.started();
      auto G = mat(group == 0 ? gwp : own.get(Co * K), Co, K);
      if (first)
        G.noalias() = cmat(lhs, Co, n * P) * cmat_t(cols, K, n * P);
      else
        G.noalias() += cmat(lhs, Co, n * P) * cmat_t(cols, K, n * P);
      if (group == 0) gw_written = true;
    });
    if (!gw_written) std::fill(gwp, gwp + Co * K, T(0));
    const int64_t total = Co * K;
    for (int t = 1; t < pl.groups; ++t) {
      if (!partial[static_cast<size_t>(t)].started()) continue;
      const T* src = partial[static_cast<size_t>(t)].data();
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(total))
      for (int64_t i = 0; i < total; ++i) gwp[i] += src[i];
    }
  });
}

}  // namespace sagan
