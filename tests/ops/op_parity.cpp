#include "tests/ops/op_parity.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "sagan/core/autograd.h"
#include "sagan/core/rng.h"

namespace sagan::optest {

Compare compare(const Tensor& got, const Tensor& want, double tol) {
  Compare r;
  if (got.shape() != want.shape()) {
    r.ok = false;
    r.message = fmt::format("shape {} vs {}", shape_str(got.shape()), shape_str(want.shape()));
    return r;
  }
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  size_t worst_i = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double e;
    if (!std::isfinite(g[i]) || !std::isfinite(w[i])) {
      const bool same = (std::isnan(g[i]) && std::isnan(w[i])) || g[i] == w[i];
      e = same && !std::isnan(g[i]) ? 0.0 : std::numeric_limits<double>::infinity();
    } else {
      e = std::abs(g[i] - w[i]) / std::max(1.0, std::abs(w[i]));
    }
    if (e > r.worst || (i == 0 && e == r.worst)) {
      r.worst = e;
      worst_i = i;
    }
  }
  r.ok = tol == 0.0 ? r.worst == 0.0 : r.worst <= tol;
  if (!g.empty())
    r.message = fmt::format("worst element {} of {}: got {:.17g}, expected {:.17g}, error {:.3g} (tolerance {:.3g})",
                            worst_i, g.size(), g[worst_i], w[worst_i], r.worst, tol);
  else
    r.message = "empty";
  return r;
}

void require_parity(const OpEntry& entry, const OpCase& c, Device device, DType dtype, const Poison& poison) {
  INFO(entry.op << " [" << c.name << "] on " << device_name(device) << " in " << dtype_name(dtype));
  std::vector<Tensor> ref = make_inputs(entry, c, dtype, DType::F64, Device::cpu());
  std::vector<Tensor> dev = make_inputs(entry, c, dtype, dtype, device);
  Tensor want = c.fn(ref);
  const double tol = c.tol_scale * tol_for(dtype);
  std::vector<Shape> shapes{want.shape()};
  for (const Tensor& t : ref) shapes.push_back(t.shape());

  Tensor got;
  for (int call = 0; call < 2; ++call) {
    if (poison) poison(shapes, dtype);
    got = c.fn(dev);
    REQUIRE(got.device() == device);
    REQUIRE_PARITY(got, want, c.exact_forward ? 0.0 : tol);
  }
  if (!want.requires_grad()) return;
  // The same upstream gradient on both sides, rounded through dtype.
  Rng gen(97);
  Tensor gy = Tensor::randn(want.shape(), gen, DType::F64).to(dtype).to(DType::F64);
  want.backward(gy);
  if (poison) poison(shapes, dtype);
  got.backward(gy.to(dtype).to(device));
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!ref[i].requires_grad()) continue;
    INFO("gradient of input " << i << " " << shape_str(ref[i].shape()));
    REQUIRE(dev[i].grad().defined());
    REQUIRE_PARITY(dev[i].grad(), ref[i].grad(), c.exact_backward ? 0.0 : tol);
  }
}

}  // namespace sagan::optest
