// Batched GEMM on Eigen maps: each operand is mapped in place (row- or
// column-major, any leading dimension), so transposed views never copy.
#include <omp.h>

#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/operand_rounding.h"

namespace sagan {

namespace {

template <class T>
using RowMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Unaligned,
                          Eigen::OuterStride<>>;
template <class T>
using ColMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>, Eigen::Unaligned,
                          Eigen::OuterStride<>>;
template <class T>
using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Unaligned,
                          Eigen::OuterStride<>>;

// One operand's (rows, cols) matrix geometry. A dim of size 1 may carry any
// stride, so it never decides the storage order.
struct Operand {
  int64_t rows, cols, batch_stride;
  bool row_major;
  int64_t ld;  // distance between rows (row-major) or columns (col-major)
};

Operand operand_of(const Tensor& t, int64_t batch, const char* what) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  Operand o{s[1], s[2], s[0] == 1 && batch > 1 ? 0 : st[0], true, 0};
  if (st[2] == 1 || o.cols == 1) {
    o.row_major = true;
    o.ld = o.rows > 1 ? st[1] : o.cols;
  } else if (st[1] == 1 || o.rows == 1) {
    o.row_major = false;
    o.ld = o.cols > 1 ? st[2] : o.rows;
  } else {
    SAGAN_FAIL("bmm: {} of shape {} has strides {}; one of its last two dims needs unit stride", what, shape_str(s),
               shape_str(st));
  }
  // Eigen asserts nothing here, but a leading dimension shorter than the
  // row would make rows overlap: the front end must hand over a real matrix.
  SAGAN_CHECK(o.ld >= (o.row_major ? o.cols : o.rows), "bmm: {} of shape {} has overlapping strides {}", what,
              shape_str(s), shape_str(st));
  return o;
}

// Calls f with an Eigen map of operand o at pointer p.
template <class T, class F>
void with_map(const Operand& o, const T* p, F&& f) {
  if (o.row_major)
    f(RowMap<T>(p, o.rows, o.cols, Eigen::OuterStride<>(o.ld)));
  else
    f(ColMap<T>(p, o.rows, o.cols, Eigen::OuterStride<>(o.ld)));
}

// The operand's columns [c0, c0 + cols) as an operand of its own.
Operand columns(const Operand& o, int64_t c0, int64_t cols, int64_t* offset) {
  *offset = o.row_major ? c0 : c0 * o.ld;
  Operand p = o;
  p.cols = cols;
  return p;
}

// c (rows of a, columns of b; row stride ldc) (beta *)= a @ b, on this thread.
template <class T>
void gemm_one(const Operand& oa, const T* a, const Operand& ob, const T* b, T* c, int64_t ldc, T beta) {
  OutMap<T> C(c, oa.rows, ob.cols, Eigen::OuterStride<>(ldc));
  with_map(oa, a, [&](const auto& A) {
    with_map(ob, b, [&](const auto& B) {
      if (beta == T(0)) {
        C.noalias() = A * B;
      } else {
        if (beta != T(1)) C *= beta;
        C.noalias() += A * B;
      }
    });
  });
}

// A batch smaller than this is split into about this many pieces.
constexpr int64_t kPieces = 8;

}  // namespace

void CpuBackend::bmm(const Tensor& a, const Tensor& b, Tensor& out, double beta) {
  if (cpu::emulate_precision(a)) {  // --precision tf32|bf16 (kernels/cpu/operand_rounding.h)
    cpu::EmulationScope scope;
    // Rounded copies are dense: a broadcast batch (size 1) stays size 1.
    bmm(cpu::rounded_operand(a), cpu::rounded_operand(b), out, beta);
    return;
  }
  SAGAN_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3, "bmm: expected 3-d operands, got {}, {} -> {}",
              shape_str(a.shape()), shape_str(b.shape()), shape_str(out.shape()));
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2);
  SAGAN_CHECK(a.size(1) == m && b.size(2) == n && a.size(2) == b.size(1) && (a.size(0) == batch || a.size(0) == 1) &&
                  (b.size(0) == batch || b.size(0) == 1),
              "bmm: shapes {} @ {} do not give {}", shape_str(a.shape()), shape_str(b.shape()), shape_str(out.shape()));
  SAGAN_CHECK(out.is_contiguous(), "bmm: output of shape {} must be contiguous", shape_str(out.shape()));
  if (out.numel() == 0) return;
  const Operand oa = operand_of(a, batch, "a"), ob = operand_of(b, batch, "b");
  dispatch_float(out.dtype(), "bmm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = out.data<T>();
    const T tb = static_cast<T>(beta);
    const int64_t k = a.size(2);
    if (k == 0) {  // an empty product: out = beta * out
      OutMap<T> C(cp, batch * m, n, Eigen::OuterStride<>(n));
      if (tb == T(0))
        C.setZero();
      else
        C *= tb;
      return;
    }
    // Pieces fixed by the shapes: each batch entry, its columns split into
    // panels when the batch is small and the GEMM big (a linear layer is a
    // batch of one). Every piece is one GEMM on one thread (Eigen is kept to
    // one: cpu_backend.cpp), so the result does not depend on how many
    // threads share the pieces.
    const double flops = 2.0 * double(batch) * double(m) * double(n) * double(k);
    const int64_t panels = batch >= kPieces || flops < 4e6 ? 1 : std::min((kPieces + batch - 1) / batch, (n + 63) / 64);
    const int64_t width = (n + panels - 1) / panels;
    auto piece = [&](int64_t i) {
      const int64_t b = i / panels, c0 = (i % panels) * width, cols = std::min(width, n - c0);
      if (cols <= 0) return;
      int64_t off = 0;
      const Operand pb = columns(ob, c0, cols, &off);
      gemm_one<T>(oa, ap + b * oa.batch_stride, pb, bp + b * ob.batch_stride + off, cp + b * m * n + c0, n, tb);
    };
    const int64_t pieces = batch * panels;
    if (pieces > 1 && flops >= 2e5 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < pieces; ++i) piece(i);
    } else {
      for (int64_t i = 0; i < pieces; ++i) piece(i);
    }
  });
}

}  // namespace sagan
