#include "sagan/layers/embedding.h"

#include "sagan/core/ops.h"

namespace sagan::nn {

namespace {
// The embedding op checks the range (and names the bad label).
void check_labels(const char* layer, const Tensor& idx) {
  SAGAN_CHECK(idx.defined() && idx.dtype() == DType::I64 && idx.dim() == 1,
              "{}: labels must be an int64 vector (B), got {} {}", layer,
              idx.defined() ? dtype_name(idx.dtype()) : "undefined",
              idx.defined() ? shape_str(idx.shape()) : std::string());
}

// Checked before the base class draws its power-iteration vectors.
Shape sn_embedding_weight_shape(int64_t num, int64_t dim) {
  SAGAN_CHECK(num > 0 && dim > 0, "SNEmbedding: need positive sizes, got {} x {}", num, dim);
  return {num, dim};
}
}  // namespace

Embedding::Embedding(int64_t num, int64_t dim, double init) {
  SAGAN_CHECK(num > 0 && dim > 0, "Embedding: need positive sizes, got {} x {}", num, dim);
  register_parameter("weight", Tensor::full({num, dim}, init));
}

Tensor Embedding::forward(const Tensor& idx) {
  check_labels("Embedding", idx);
  return embedding(param("weight"), idx);
}

SNEmbedding::SNEmbedding(int64_t num, int64_t dim, Rng& gen)
    : SpectralNormed(sn_embedding_weight_shape(num, dim), gen) {}

Tensor SNEmbedding::forward(const Tensor& idx) {
  check_labels("SNEmbedding", idx);
  return embedding(normalized_weight(), idx);
}

}  // namespace sagan::nn
