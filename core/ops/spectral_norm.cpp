// Spectral normalisation helpers (Miyato et al. 2018). The layer keeps
// persistent vectors u (out) and v (in) per weight; a training forward runs
// one power_iteration on them without autograd, then divides W by
// sigma = u^T W v, whose gradient flows to W only (u, v are constants).
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;

void power_iteration(const std::vector<Tensor>& w, std::vector<Tensor>& u, std::vector<Tensor>& v, double eps) {
  SAGAN_CHECK(w.size() == u.size() && w.size() == v.size(),
              "power_iteration: list lengths differ, {} weights, {} u, {} v", w.size(), u.size(), v.size());
  SAGAN_CHECK(eps > 0, "power_iteration: eps must be positive, got {}", eps);
  if (w.empty()) return;
  std::vector<Tensor> wc(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const Tensor &wi = w[i], &ui = u[i], &vi = v[i];
    SAGAN_CHECK(wi.defined() && ui.defined() && vi.defined(), "power_iteration: triple {} has an undefined tensor", i);
    SAGAN_CHECK(is_floating(wi.dtype()), "power_iteration: w[{}] must be floating, got {} {}", i,
                dtype_name(wi.dtype()), shape_str(wi.shape()));
    SAGAN_CHECK(wi.dim() == 2, "power_iteration: w[{}] must be 2-d (out, in), got {}", i, shape_str(wi.shape()));
    SAGAN_CHECK(ui.dim() == 1 && ui.size(0) == wi.size(0),
                "power_iteration: u[{}] must have shape [{}] for w {}, got {}", i, wi.size(0), shape_str(wi.shape()),
                shape_str(ui.shape()));
    SAGAN_CHECK(vi.dim() == 1 && vi.size(0) == wi.size(1),
                "power_iteration: v[{}] must have shape [{}] for w {}, got {}", i, wi.size(1), shape_str(wi.shape()),
                shape_str(vi.shape()));
    SAGAN_CHECK(ui.dtype() == wi.dtype() && vi.dtype() == wi.dtype(),
                "power_iteration: triple {} mixes dtypes, w {} u {} v {}", i, dtype_name(wi.dtype()),
                dtype_name(ui.dtype()), dtype_name(vi.dtype()));
    SAGAN_CHECK(wi.device() == w[0].device() && ui.device() == w[0].device() && vi.device() == w[0].device(),
                "power_iteration: triple {} is not on {} like w[0]", i, device_name(w[0].device()));
    // u and v are written in place: they must be plain buffers.
    SAGAN_CHECK(ui.is_contiguous() && vi.is_contiguous(), "power_iteration: u[{}] {} and v[{}] {} must be contiguous",
                i, shape_str(ui.shape()), i, shape_str(vi.shape()));
    SAGAN_CHECK(!ui.requires_grad() && !vi.requires_grad(),
                "power_iteration: u[{}] and v[{}] must not require grad (they are updated in place)", i, i);
    wc[i] = wi.detach().contiguous();
  }
  NoGradGuard ng;
  backend_of(w[0]).power_iteration(wc, u, v, eps);
  for (std::vector<Tensor>* list : {&u, &v})
    for (const Tensor& t : *list) t.bump_version();
}

Tensor spectral_sigma(const Tensor& w2d, const Tensor& u, const Tensor& v) {
  const char* op = "spectral_sigma";
  detail::check_defined(op, w2d, "w");
  detail::check_defined(op, u, "u");
  detail::check_defined(op, v, "v");
  detail::check_float(op, w2d);
  detail::check_same(op, w2d, u);
  detail::check_same(op, w2d, v);
  detail::check_dim(op, w2d, 2, "w (out, in)");
  SAGAN_CHECK(u.dim() == 1 && u.size(0) == w2d.size(0), "spectral_sigma: u must have shape [{}] for w {}, got {}",
              w2d.size(0), shape_str(w2d.shape()), shape_str(u.shape()));
  SAGAN_CHECK(v.dim() == 1 && v.size(0) == w2d.size(1), "spectral_sigma: v must have shape [{}] for w {}, got {}",
              w2d.size(1), shape_str(w2d.shape()), shape_str(v.shape()));
  // u and v are copied: layers update them in place (the next power
  // iteration) before this graph's backward runs. Only these two vectors are
  // kept; the W-sized u v^T exists only transiently inside backward.
  Tensor uc, vc, sigma;
  {
    NoGradGuard ng;
    uc = u.detach().clone(), vc = v.detach().clone();
    Tensor wv = matmul(w2d.detach(), vc.unsqueeze(1)).squeeze(1);  // (out)
    sigma = sum(mul(uc, wv));
  }
  record(op, sigma, {w2d}, [uc, vc](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(mul(uc.unsqueeze(1), g), vc.unsqueeze(0))};  // g u v^T
  });
  return sigma;
}

}  // namespace sagan
