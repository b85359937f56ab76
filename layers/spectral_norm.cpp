#include "sagan/layers/spectral_norm.h"

#include "sagan/core/ops.h"
#include "sagan/layers/init.h"

namespace sagan::nn {

SpectralNormed::SpectralNormed(const Shape& weight_shape, Rng& gen) {
  SAGAN_CHECK(weight_shape.size() >= 2, "SpectralNormed: weight must be at least 2-d, got {}", shape_str(weight_shape));
  register_parameter("weight_orig", xavier_uniform(weight_shape, gen));
  int64_t out = weight_shape[0], rest = numel_of(weight_shape) / weight_shape[0];
  register_buffer("weight_u", random_unit_vector(out, gen));
  register_buffer("weight_v", random_unit_vector(rest, gen));
}

Tensor SpectralNormed::weight_matrix() const {
  Tensor w = param("weight_orig");
  return w.detach().view({w.size(0), w.numel() / w.size(0)});
}

Tensor SpectralNormed::normalized_weight() {
  Tensor w = param("weight_orig");
  Tensor u = this->u(), v = this->v();
  if (is_training()) {
    if (!iterated_) {
      std::vector<Tensor> ws{weight_matrix()}, us{u}, vs{v};
      power_iteration(ws, us, vs);
    }
    iterated_ = false;
  }
  // The next training forward (D on fakes after D on reals) updates u, v in
  // place before this graph's backward; spectral_sigma keeps its own u v^T,
  // so this graph is unaffected (tests/test_layers_sn.cpp checks it).
  Tensor sigma = spectral_sigma(w.view({w.size(0), w.numel() / w.size(0)}), u, v);
  last_sigma_ = sigma.detach();
  return div(w, sigma);
}

std::vector<SpectralNormed*> spectral_norm_layers(Module& m) { return m.spectral_norm_layers(); }

int64_t power_iterate_all(Module& m) {
  std::vector<SpectralNormed*> layers;
  std::vector<Tensor> ws, us, vs;
  for (SpectralNormed* sn : spectral_norm_layers(m)) {
    if (!sn->is_training()) continue;
    layers.push_back(sn);
    ws.push_back(sn->weight_matrix());
    us.push_back(sn->u());
    vs.push_back(sn->v());
  }
  if (layers.empty()) return 0;
  power_iteration(ws, us, vs);
  for (SpectralNormed* sn : layers) sn->mark_iterated();
  return static_cast<int64_t>(layers.size());
}

int64_t skip_power_iteration(Module& m) {
  int64_t n = 0;
  for (SpectralNormed* sn : spectral_norm_layers(m))
    if (sn->is_training()) {
      sn->mark_iterated();
      ++n;
    }
  return n;
}

}  // namespace sagan::nn
