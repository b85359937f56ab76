// softmax(q k^T) v (no scaling) in plain float64 loops, the reference for
// the fused attention kernels whether they run on the GPU or in the CPU
// emulator. Header-only and free of Catch2 so that either test binary can
// include it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace sagan::testing {

struct AttentionReference {
  std::vector<double> out, lse, gq, gk, gv;  // gq, gk, gv only when dL/dout is given
};

// Row-major float32 q (B,N,d), k (B,S,d), v (B,S,dv) and, if not null, gout
// (B,N,dv); Shape is any struct with int fields B, N, S, d, dv.
template <class Shape>
AttentionReference attention_reference(const float* q, const float* k, const float* v, const float* gout,
                                       const Shape& s) {
  AttentionReference r;
  r.out.assign(size_t(s.B) * s.N * s.dv, 0.0);
  r.lse.assign(size_t(s.B) * s.N, 0.0);
  if (gout) {
    r.gq.assign(size_t(s.B) * s.N * s.d, 0.0);
    r.gk.assign(size_t(s.B) * s.S * s.d, 0.0);
    r.gv.assign(size_t(s.B) * s.S * s.dv, 0.0);
  }
  std::vector<double> sc(s.S), p(s.S);
  for (int b = 0; b < s.B; ++b)
    for (int i = 0; i < s.N; ++i) {
      const float* qi = q + (size_t(b) * s.N + i) * s.d;
      double mx = -INFINITY;
      for (int j = 0; j < s.S; ++j) {
        const float* kj = k + (size_t(b) * s.S + j) * s.d;
        double dot = 0;
        for (int e = 0; e < s.d; ++e) dot += double(qi[e]) * kj[e];
        sc[j] = dot;
        mx = std::max(mx, dot);
      }
      double z = 0;
      for (int j = 0; j < s.S; ++j) z += std::exp(sc[j] - mx);
      r.lse[size_t(b) * s.N + i] = mx + std::log(z);
      for (int j = 0; j < s.S; ++j) p[j] = std::exp(sc[j] - mx) / z;
      double* oi = r.out.data() + (size_t(b) * s.N + i) * s.dv;
      for (int j = 0; j < s.S; ++j)
        for (int c = 0; c < s.dv; ++c) oi[c] += p[j] * v[(size_t(b) * s.S + j) * s.dv + c];
      if (!gout) continue;
      const float* gi = gout + (size_t(b) * s.N + i) * s.dv;
      double D = 0;
      for (int c = 0; c < s.dv; ++c) D += double(gi[c]) * oi[c];
      for (int j = 0; j < s.S; ++j) {
        const size_t kv = size_t(b) * s.S + j;
        double dp = 0;
        for (int c = 0; c < s.dv; ++c) {
          dp += double(gi[c]) * v[kv * s.dv + c];
          r.gv[kv * s.dv + c] += p[j] * gi[c];
        }
        const double ds = p[j] * (dp - D);
        for (int e = 0; e < s.d; ++e) {
          r.gq[(size_t(b) * s.N + i) * s.d + e] += ds * k[kv * s.d + e];
          r.gk[kv * s.d + e] += ds * qi[e];
        }
      }
    }
  return r;
}

// max |x - ref| / max |ref|; a NaN or infinity in x fails any bound.
template <class Floats>
double max_rel_error(const Floats& x, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num = std::max(num, std::abs(x[i] - ref[i]));
    den = std::max(den, std::abs(ref[i]));
  }
  return num / std::max(den, 1e-30);
}

template <class Floats>
double max_abs_error(const Floats& x, const std::vector<double>& ref) {
  double e = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    e = std::max(e, std::abs(x[i] - ref[i]));
  }
  return e;
}

}  // namespace sagan::testing
