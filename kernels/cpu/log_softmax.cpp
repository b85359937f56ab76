// log_softmax over the last dim, forward and backward, rows in parallel.
// Each row subtracts its maximum before exponentiating, so large logits
// neither overflow nor lose the small ones; the row sums accumulate in double.
#include <algorithm>
#include <cmath>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

void CpuBackend::log_softmax(const Tensor& x, Tensor& out) {
  const int64_t n = x.shape().empty() ? 1 : x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_float(x.dtype(), "log_softmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(rows * n))
    for (int64_t r = 0; r < rows; ++r) {
      const T* a = xp + r * n;
      T* y = yp + r * n;
      T m = a[0];
      for (int64_t i = 1; i < n; ++i) m = std::max(m, a[i]);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(a[i] - m));
      const T shift = m + static_cast<T>(std::log(s));
      for (int64_t i = 0; i < n; ++i) y[i] = a[i] - shift;
    }
  });
}

void CpuBackend::log_softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  const int64_t n = y.shape().empty() ? 1 : y.shape().back();
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  dispatch_float(y.dtype(), "log_softmax_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* yp = y.data<T>();
    const T* gp = gy.data<T>();
    T* xp = gx.data<T>();
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(rows * n))
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = yp + r * n;
      const T* gr = gp + r * n;
      T* xr = xp + r * n;
      double total = 0;
      for (int64_t i = 0; i < n; ++i) total += static_cast<double>(gr[i]);
      for (int64_t i = 0; i < n; ++i) xr[i] = gr[i] - std::exp(yr[i]) * static_cast<T>(total);
    }
  });
}

}  // namespace sagan
