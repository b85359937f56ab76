// Sum over dims and softmax over the last dim.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/strided.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

namespace {

// One dim of the merged (x, out) iteration space, outermost first; out
// stride 0 marks a reduced dim.
struct Dim {
  int64_t size, xs, os;
};

// Adds up n elements p[0], p[s], ...: sixteen double accumulators, so that
// the compiler vectorises the unit-stride loop (float converts on the way)
// and rounding error grows with n/16 rather than n.
template <class T>
double sum_run(const T* p, int64_t n, int64_t s) {
  if (s != 1) {
    double t = 0;
    for (int64_t i = 0; i < n; ++i) t += static_cast<double>(p[i * s]);
    return t;
  }
  constexpr int L = 16;
  double a[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int k = 0; k < L; ++k) a[k] += static_cast<double>(p[i + k]);
  double t = 0;
  for (int k = 0; k < L; ++k) t += a[k];
  for (; i < n; ++i) t += static_cast<double>(p[i]);
  return t;
}

// Accumulates the box of x where dim `split` runs over [lo, hi) (all other
// dims in full) into acc, indexed by out offset. Rows are visited in memory
// order; an innermost reduced dim folds each row into one accumulator, an
// innermost kept dim adds the row into a run of accumulators.
template <class T>
void accumulate_box(const T* xp, double* acc, const std::vector<Dim>& dims, size_t split, int64_t lo, int64_t hi) {
  const size_t m = dims.size();
  const Dim& in = dims[m - 1];
  const int64_t in_lo = split == m - 1 ? lo : 0, in_len = (split == m - 1 ? hi : in.size) - in_lo;
  std::vector<int64_t> idx(m - 1), first(m - 1), last(m - 1);
  int64_t xo = in_lo * in.xs, oo = in_lo * in.os, rows = 1;
  for (size_t d = 0; d + 1 < m; ++d) {
    first[d] = d == split ? lo : 0;
    last[d] = d == split ? hi : dims[d].size;
    idx[d] = first[d];
    xo += first[d] * dims[d].xs;
    oo += first[d] * dims[d].os;
    rows *= last[d] - first[d];
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* p = xp + xo;
    if (in.os == 0) {
      acc[oo] += sum_run(p, in_len, in.xs);
    } else if (in.os == 1 && in.xs == 1) {
      double* a = acc + oo;
      for (int64_t j = 0; j < in_len; ++j) a[j] += static_cast<double>(p[j]);
    } else {
      for (int64_t j = 0; j < in_len; ++j) acc[oo + j * in.os] += static_cast<double>(p[j * in.xs]);
    }
    for (size_t d = m - 1; d-- > 0;) {
      xo += dims[d].xs;
      oo += dims[d].os;
      if (++idx[d] < last[d]) break;
      xo -= (last[d] - first[d]) * dims[d].xs;
      oo -= (last[d] - first[d]) * dims[d].os;
      idx[d] = first[d];
    }
  }
}

// Work is cut into pieces by the geometry alone, never by the thread count,
// and each output's terms are added in a fixed order: results are
// bit-identical on any number of cores.
constexpr int64_t kReducePiece = 1 << 15;     // elements of x per piece, at least
constexpr int64_t kRun = 1 << 14;             // contiguous elements per row of a piece, when choosable
constexpr int64_t kPrivateOutputs = 1 << 15;  // largest out that gets per-piece accumulators
constexpr int64_t kPrivateTotal = 1 << 22;    // doubles in all per-piece accumulators

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T>
void sum_kernel(const T* xp, T* op, const std::vector<Dim>& dims, int64_t numel, int64_t on) {
  std::vector<double> acc(static_cast<size_t>(on), 0.0);
  if (numel < 2 * kReducePiece) {
    accumulate_box(xp, acc.data(), dims, 0, 0, dims[0].size);
  } else if (dims[0].os != 0 || on > kPrivateOutputs) {
    // Pieces along a kept dim own disjoint outputs: no private accumulators.
    // The outermost dim keeps each piece one contiguous stretch of memory;
    // otherwise the outermost kept dim, in pieces long enough to stream.
    size_t k = 0;
    while (dims[k].os == 0) ++k;
    const int64_t w = numel / dims[k].size;
    int64_t len = ceil_div(kReducePiece, w);
    if (k > 0) len = std::max(len, ceil_div(kRun, std::max<int64_t>(std::abs(dims[k].xs), 1)));
    len = std::min(len, dims[k].size);
    const int64_t pieces = ceil_div(dims[k].size, len);
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t i = 0; i < pieces; ++i)
      accumulate_box(xp, acc.data(), dims, k, i * len, std::min(dims[k].size, (i + 1) * len));
  } else {
    // The outermost dim is reduced and the output small (a bias gradient,
    // a full sum): each piece of the outermost dim gets its own
    // accumulators, added up in piece order afterwards.
    const int64_t w = numel / dims[0].size;
    int64_t len = ceil_div(kReducePiece, w);
    len = std::max(len, ceil_div(dims[0].size, std::max<int64_t>(kPrivateTotal / on, 1)));
    len = std::min(len, dims[0].size);
    const int64_t pieces = ceil_div(dims[0].size, len);
    std::vector<double> part(static_cast<size_t>(pieces * on), 0.0);
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t i = 0; i < pieces; ++i)
      accumulate_box(xp, part.data() + i * on, dims, 0, i * len, std::min(dims[0].size, (i + 1) * len));
    for (int64_t i = 0; i < pieces; ++i)
      for (int64_t o = 0; o < on; ++o) acc[static_cast<size_t>(o)] += part[static_cast<size_t>(i * on + o)];
  }
#pragma omp parallel for schedule(static) if (on >= kReducePiece)
  for (int64_t o = 0; o < on; ++o) op[o] = static_cast<T>(acc[static_cast<size_t>(o)]);
}

}  // namespace

void CpuBackend::sum(const Tensor& x, Tensor& out) {
  const Shape& xs = x.shape();
  SAGAN_CHECK(out.dim() == x.dim(), "sum: output of shape {} must keep the rank of input {}", shape_str(out.shape()),
              shape_str(xs));
  for (size_t i = 0; i < xs.size(); ++i)
    SAGAN_CHECK(out.shape()[i] == xs[i] || out.shape()[i] == 1, "sum: output of shape {} does not fit input {}",
                shape_str(out.shape()), shape_str(xs));
  SAGAN_CHECK(out.is_contiguous(), "sum: output of shape {} must be contiguous", shape_str(out.shape()));
  if (out.numel() == 0) return;
  if (x.numel() == 0) {
    fill(out, 0.0);
    return;
  }
  // Walk x in memory order (dims sorted by x stride, largest first) so that
  // the innermost loop is the unit-stride one, whichever view x is.
  const size_t nd = xs.size();
  std::vector<size_t> order(nd);
  for (size_t i = 0; i < nd; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x.strides()[a] > x.strides()[b]; });
  Shape shape, xst, ost;
  for (size_t i : order) {
    shape.push_back(xs[i]);
    xst.push_back(x.strides()[i]);
    ost.push_back(out.shape()[i] == 1 && xs[i] != 1 ? 0 : out.strides()[i]);
  }
  cpu::Geometry<2> g = cpu::merge_dims<2>(shape, {xst, ost});
  std::vector<Dim> dims;
  bool reduces = false;
  for (size_t d = 0; d < g.shape.size(); ++d) {
    dims.push_back({g.shape[d], g.strides[0][d], g.strides[1][d]});
    reduces |= g.strides[1][d] == 0;
  }
  if (!reduces) {  // only size-1 dims "reduced": a copy
    copy(x, out);
    return;
  }
  dispatch_float(x.dtype(), "sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    sum_kernel<T>(static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), dims, x.numel(), out.numel());
  });
}

void CpuBackend::softmax(const Tensor& x, Tensor& out) {
  const int64_t n = x.shape().empty() ? 1 : x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_float(x.dtype(), "softmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(rows * n))
    for (int64_t r = 0; r < rows; ++r) {
      const T* a = xp + r * n;
      T* y = yp + r * n;
      T m = a[0];
      for (int64_t i = 1; i < n; ++i) m = std::max(m, a[i]);
      T s = 0;
      for (int64_t i = 0; i < n; ++i) s += (y[i] = std::exp(a[i] - m));
      const T inv = T(1) / s;
      for (int64_t i = 0; i < n; ++i) y[i] *= inv;
    }
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  const int64_t n = y.shape().empty() ? 1 : y.shape().back();
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  dispatch_float(y.dtype(), "softmax_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* yp = static_cast<const T*>(y.raw_data());
    const T* gp = static_cast<const T*>(gy.raw_data());
    T* xp = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(rows * n))
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = yp + r * n;
      const T* gr = gp + r * n;
      T* xr = xp + r * n;
      T dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += yr[i] * gr[i];
      for (int64_t i = 0; i < n; ++i) xr[i] = yr[i] * (gr[i] - dot);
    }
  });
}

}  // namespace sagan
