// Sum over dims and softmax over the last dim.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/strided.h"

namespace sagan {

void CpuBackend::sum(const Tensor& x, Tensor& out) {
  // Iterate over x with out's strides set to 0 on reduced dims. Rows that
  // reduce (stride 0 in out) accumulate in double for accuracy; the outer
  // loop is serial over reduced rows to avoid races.
  const Shape& xs = x.shape();
  Shape ost(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) ost[i] = out.shape()[i] == 1 && xs[i] != 1 ? 0 : out.strides()[i];
  dispatch_float(x.dtype(), "sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    const int64_t on = out.numel();
    // Put reduced dims innermost: permute so kept dims come first, then
    // reduce each output element with a serial inner walk.
    std::vector<size_t> kept, red;
    for (size_t i = 0; i < xs.size(); ++i) (ost[i] == 0 && xs[i] != 1 ? red : kept).push_back(i);
    Shape rshape, rstride;
    for (size_t i : red) rshape.push_back(xs[i]), rstride.push_back(x.strides()[i]);
    Shape kshape, kxstride, kostride;
    for (size_t i : kept) kshape.push_back(xs[i]), kxstride.push_back(x.strides()[i]), kostride.push_back(out.strides()[i]);
    const int64_t rn = numel_of(rshape);
    cpu::Geometry<1> rg = cpu::merge_dims<1>(rshape, {rstride});
    const size_t rnd = rg.shape.size();
    const int64_t rinner = rg.shape.back(), rinner_st = rg.strides[0].back();
    const int64_t router = rn / std::max<int64_t>(rinner, 1);
#pragma omp parallel for schedule(static) if (on > 1 && on * rn >= 32768)
    for (int64_t o = 0; o < on; ++o) {
      int64_t xoff = 0, ooff = 0, rem = o;
      for (size_t d = kshape.size(); d-- > 0;) {
        int64_t i = rem % kshape[d];
        rem /= kshape[d];
        xoff += i * kxstride[d];
        ooff += i * kostride[d];
      }
      double acc = 0.0;
      for (int64_t r = 0; r < router; ++r) {
        int64_t roff = 0, rr = r;
        for (size_t d = rnd - 1; d-- > 0;) {
          roff += (rr % rg.shape[d]) * rg.strides[0][d];
          rr /= rg.shape[d];
        }
        const T* p = xp + xoff + roff;
        if (rinner_st == 1) {
          T part = 0;
          for (int64_t i = 0; i < rinner; ++i) part += p[i];
          acc += static_cast<double>(part);
        } else {
          for (int64_t i = 0; i < rinner; ++i) acc += static_cast<double>(p[i * rinner_st]);
        }
      }
      op[ooff] = static_cast<T>(acc);
    }
  });
}

void CpuBackend::softmax(const Tensor& x, Tensor& out) {
  const int64_t n = x.shape().empty() ? 1 : x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_float(x.dtype(), "softmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (rows * n >= 32768)
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
#pragma omp parallel for schedule(static) if (rows * n >= 32768)
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
