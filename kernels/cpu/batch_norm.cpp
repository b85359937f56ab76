// Batch-norm kernels: per-channel statistics over (N, H, W) of an NCHW
// tensor, normalisation, and the backward of normalisation with batch
// statistics. Sums accumulate in double so that float32 statistics over large
// batches keep full precision; channels run in parallel.
#include <cmath>

#include "sagan/kernels/cpu/cpu_backend.h"
#include "sagan/kernels/cpu/worth_parallel.h"

namespace sagan {

namespace {
struct Planes {
  int64_t n, c, hw;  // x (n, c, hw) contiguous
};

Planes planes_of(const Tensor& x, const char* op) {
  SAGAN_CHECK(x.dim() == 4 && x.is_contiguous(), "{}: expected a contiguous NCHW tensor, got shape {}", op,
              shape_str(x.shape()));
  return {x.shape()[0], x.shape()[1], x.shape()[2] * x.shape()[3]};
}

// Sum of f(i) over one plane of hw elements, in double.
template <class F>
double plane_sum(int64_t hw, F f) {
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < hw; ++i) acc += f(i);
  return acc;
}
}  // namespace

void CpuBackend::batch_norm_stats(const Tensor& x, Tensor& mean, Tensor& var, Tensor& invstd, double eps) {
  const Planes p = planes_of(x, "batch_norm_stats");
  const int64_t m = p.n * p.hw;
  SAGAN_CHECK(m > 0, "batch_norm_stats: no elements per channel in shape {}", shape_str(x.shape()));
  dispatch_float(x.dtype(), "batch_norm_stats", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* mp = static_cast<T*>(mean.raw_data());
    T* vp = static_cast<T*>(var.raw_data());
    T* ip = static_cast<T*>(invstd.raw_data());
#pragma omp parallel for schedule(static) if (p.c > 1 && cpu::worth_parallel(x.numel()))
    for (int64_t c = 0; c < p.c; ++c) {
      // Two passes (mean, then squared deviations) avoid the cancellation of
      // E[x^2] - E[x]^2 when |mean| >> std.
      double s = 0.0;
      for (int64_t b = 0; b < p.n; ++b) {
        const T* q = xp + (b * p.c + c) * p.hw;
        s += plane_sum(p.hw, [q](int64_t i) { return static_cast<double>(q[i]); });
      }
      const double mu = s / static_cast<double>(m);
      double ss = 0.0;
      for (int64_t b = 0; b < p.n; ++b) {
        const T* q = xp + (b * p.c + c) * p.hw;
        ss += plane_sum(p.hw, [q, mu](int64_t i) {
          const double d = static_cast<double>(q[i]) - mu;
          return d * d;
        });
      }
      const double v = ss / static_cast<double>(m);
      mp[c] = static_cast<T>(mu);
      vp[c] = static_cast<T>(v);
      ip[c] = static_cast<T>(1.0 / std::sqrt(v + eps));
    }
  });
}

void CpuBackend::batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& out) {
  const Planes p = planes_of(x, "batch_norm_normalize");
  dispatch_float(x.dtype(), "batch_norm_normalize", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* mp = static_cast<const T*>(mean.raw_data());
    const T* ip = static_cast<const T*>(invstd.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    const int64_t planes = p.n * p.c;
#pragma omp parallel for schedule(static) if (planes > 1 && cpu::worth_parallel(x.numel()))
    for (int64_t k = 0; k < planes; ++k) {
      const int64_t c = k % p.c;
      const T mu = mp[c], is = ip[c];
      const T* q = xp + k * p.hw;
      T* o = op + k * p.hw;
      for (int64_t i = 0; i < p.hw; ++i) o[i] = (q[i] - mu) * is;
    }
  });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gy,
                                     Tensor& gx) {
  const Planes p = planes_of(x, "batch_norm_backward");
  const int64_t m = p.n * p.hw;
  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* gp = static_cast<const T*>(gy.raw_data());
    const T* mp = static_cast<const T*>(mean.raw_data());
    const T* ip = static_cast<const T*>(invstd.raw_data());
    T* op = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (p.c > 1 && cpu::worth_parallel(x.numel()))
    for (int64_t c = 0; c < p.c; ++c) {
      const double mu = static_cast<double>(mp[c]), is = static_cast<double>(ip[c]);
      // sum(gy) and sum(gy * xhat) = invstd * sum(gy * (x - mean)).
      double sg = 0.0, sgx = 0.0;
      for (int64_t b = 0; b < p.n; ++b) {
        const T* q = xp + (b * p.c + c) * p.hw;
        const T* g = gp + (b * p.c + c) * p.hw;
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t i = 0; i < p.hw; ++i) {
          const double gi = static_cast<double>(g[i]);
          sg += gi;
          sgx += gi * (static_cast<double>(q[i]) - mu);
        }
      }
      const double inv_m = 1.0 / static_cast<double>(m);
      // gx = invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), with
      // xhat * mean(gy * xhat) = (x - mean) * invstd^2 * sgx / m.
      const T a = static_cast<T>(is);
      const T b0 = static_cast<T>(sg * inv_m);
      const T k = static_cast<T>(is * is * sgx * inv_m);
      const T muT = static_cast<T>(mu);
      for (int64_t b = 0; b < p.n; ++b) {
        const int64_t base = (b * p.c + c) * p.hw;
        const T* q = xp + base;
        const T* g = gp + base;
        T* o = op + base;
        for (int64_t i = 0; i < p.hw; ++i) o[i] = a * (g[i] - b0 - (q[i] - muT) * k);
      }
    }
  });
}

}  // namespace sagan
