// Spectral normalisation (Miyato et al. 2018) as torch.nn.utils.spectral_norm
// does it, so state dicts interoperate: parameter weight_orig, buffers
// weight_u (out) and weight_v (in*kh*kw), W viewed as (out, rest).
// Training forward: one power iteration under no-grad, v = normalize(W^T u)
// then u = normalize(W v) (torch's order, eps 1e-12), then sigma = u^T W v
// with gradient through W; the layer uses W / sigma. Eval: no iteration.
//
// The iteration of every layer of a model can run as one batched
// power_iteration call (power_iterate_all) before a training forward; each
// layer then skips its own iteration once (the mark is consumed by the next
// training forward, so call it before every forward that should be batched,
// e.g. before D on reals and again before D on fakes). The result is the
// same as each layer iterating itself.
#pragma once
#include <vector>

#include "sagan/core/rng.h"
#include "sagan/layers/module.h"

namespace sagan::nn {

class SpectralNormed : public Module {
 public:
  // weight_orig viewed as (out, rest), detached: the matrix the iteration reads.
  Tensor weight_matrix() const;
  Tensor u() const { return buffer("weight_u"); }
  Tensor v() const { return buffer("weight_v"); }
  // The next training forward finds its power iteration done (batched).
  void mark_iterated() { iterated_ = true; }
  bool iterated() const { return iterated_; }
  // sigma of the last forward, detached (for logging).
  Tensor last_sigma() const { return last_sigma_; }
  // W / sigma, iterating first in training mode (see above).
  Tensor normalized_weight();

 protected:
  // Registers weight_orig (xavier-uniform) and the unit vectors u, v.
  SpectralNormed(const Shape& weight_shape, Rng& gen);

 private:
  bool iterated_ = false;
  Tensor last_sigma_;
};

// Every spectrally normalised layer under m (m included), depth first.
std::vector<SpectralNormed*> spectral_norm_layers(Module& m);
// One power iteration for every SN layer under m that is in training mode,
// in a single power_iteration call; marks them iterated. Returns how many.
int64_t power_iterate_all(Module& m);
// Marks every SN layer under m in training mode iterated without iterating:
// its next training forward uses u and v as they are. The passes of one
// accumulated update (Trainer, --accumulate) share the update's one
// iteration, as the ranks of a data-parallel job do. Returns how many.
int64_t skip_power_iteration(Module& m);

}  // namespace sagan::nn
