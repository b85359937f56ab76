#include "tests/support/gradcheck.h"

#include <algorithm>
#include <cmath>

namespace sagan::testing {

Tensor randn64(const Shape& shape, Rng& gen, bool requires_grad) {
  Tensor t = Tensor::randn(shape, gen, DType::F64);
  t.set_requires_grad(requires_grad);
  return t;
}

Tensor uniform64(const Shape& shape, double lo, double hi, Rng& gen, bool requires_grad) {
  Tensor t = Tensor::rand(shape, gen, DType::F64);
  {
    NoGradGuard ng;
    t = add(mul(t, hi - lo), lo);
  }
  t.set_requires_grad(requires_grad);
  return t;
}

GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps, double tol, uint64_t seed) {
  GradcheckResult res;
  for (const Tensor& t : inputs)
    SAGAN_CHECK(!t.defined() || t.dtype() != DType::F32, "gradcheck: inputs must be float64 (or int64)");
  Tensor y = f(inputs);
  Rng gen(seed);
  Tensor w = Tensor::randn(y.shape(), gen, DType::F64);
  for (Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
  Tensor loss = sum(mul(y, w));
  loss.backward();

  auto scalar_loss = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    return sum(mul(f(in), w)).item();
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    std::vector<double> analytic =
        g.defined() ? g.to_vector() : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    // Perturb a contiguous copy element by element.
    std::vector<double> base = x.to_vector();
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto probe = [&](double delta) {
        std::vector<double> v = base;
        v[static_cast<size_t>(i)] += delta;
        std::vector<Tensor> in = inputs;
        in[k] = Tensor::from_vector(v, x.shape(), DType::F64);
        return scalar_loss(in);
      };
      double numeric = (probe(eps) - probe(-eps)) / (2 * eps);
      double a = analytic[static_cast<size_t>(i)];
      double rel = std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
      // A NaN on either side is the worst error there is (rel > worst would
      // be false for it, and the check would pass).
      if (std::isnan(rel)) rel = INFINITY;
      if (rel > res.max_rel_error) {
        res.max_rel_error = rel;
        res.message = fmt::format("input {} element {}: analytic {:.12g}, numeric {:.12g}, rel error {:.3g}", k, i, a,
                                  numeric, rel);
      }
    }
  }
  res.ok = res.max_rel_error <= tol;
  return res;
}

CloseResult allclose(const Tensor& a, const std::vector<double>& bv, double rtol, double atol) {
  CloseResult r;
  std::vector<double> av = a.to_vector();
  if (av.size() != bv.size()) {
    r.ok = false;
    r.message = fmt::format("size mismatch: {} vs {}", av.size(), bv.size());
    return r;
  }
  for (size_t i = 0; i < av.size(); ++i) {
    // Exactly equal is within any tolerance: zeros (0 / 0 would be NaN) and
    // equal infinities (inf - inf is NaN) included. Any other non-finite
    // value on either side never passes, NaN against NaN included.
    double e = 0;
    if (av[i] != bv[i])
      e = std::isfinite(av[i]) && std::isfinite(bv[i]) ? std::abs(av[i] - bv[i]) / (atol + rtol * std::abs(bv[i]))
                                                       : INFINITY;
    if (e > r.worst) {
      r.worst = e;
      r.message = fmt::format("element {}: got {:.17g}, expected {:.17g}", i, av[i], bv[i]);
    }
  }
  r.ok = r.worst <= 1.0;
  return r;
}

CloseResult allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) {
    CloseResult r;
    r.ok = false;
    r.message = fmt::format("shape mismatch: {} vs {}", shape_str(a.shape()), shape_str(b.shape()));
    return r;
  }
  return allclose(a, b.to_vector(), rtol, atol);
}

}  // namespace sagan::testing
