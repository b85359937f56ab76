// Class embeddings. Embedding: a plain table (conditional-BN gains and
// biases, which SAGAN does not normalise). SNEmbedding: the discriminator's
// projection table, spectrally normalised with torch's dim 0: W is
// (classes, C), weight_u has `classes` entries, weight_v has C.
#pragma once
#include "sagan/layers/spectral_norm.h"

namespace sagan::nn {

class Embedding : public Module {
 public:
  // weight (num, dim) filled with `init` (zeros for the CBN tables).
  Embedding(int64_t num, int64_t dim, double init = 0.0);
  // idx int64 (B) -> (B, dim)
  Tensor forward(const Tensor& idx);

 protected:
  const char* type_name() const override { return "Embedding"; }
};

class SNEmbedding : public SpectralNormed {
 public:
  SNEmbedding(int64_t num, int64_t dim, Rng& gen);  // xavier-uniform, as the official code
  Tensor forward(const Tensor& idx);

 protected:
  const char* type_name() const override { return "SNEmbedding"; }
};

}  // namespace sagan::nn
