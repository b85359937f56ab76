// The mathematics of GAN evaluation, in float64 on the CPU:
//  - FeatureStats: mean and covariance of feature vectors, accumulated batch
//    by batch (Chan et al.'s pairwise update, so no catastrophic cancellation
//    from sums of squares);
//  - Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) through
//    symmetric eigendecompositions (never an iteration that can fail quietly);
//  - KID: unbiased MMD^2 with the cubic polynomial kernel over random subsets;
//  - Inception Score exp(E KL(p(y|x) || p(y))) over splits;
//  - precision / recall with k-NN manifolds (Kynkaanniemi et al. 2019);
//  - statistics cache files (safetensors: mu, sigma, n, the feature net's
//    name, optionally the features themselves for KID and precision/recall).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::quality {

// Row-major (rows, cols) float32 features (or logits) of a set of images.
struct FeatureMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;

  // Appends a (n, cols) tensor of any float dtype and device.
  void append(const Tensor& batch);
  const float* row(int64_t i) const { return data.data() + i * cols; }
  Tensor to_tensor() const;                           // (rows, cols) float32 on the CPU
  static FeatureMatrix from_tensor(const Tensor& t);  // (n, d)
  FeatureMatrix head(int64_t n) const;                // the first min(n, rows) rows
};

// Mean and covariance of a Gaussian fitted to features.
struct GaussianStats {
  int64_t n = 0, dim = 0;
  std::vector<double> mu;     // (dim)
  std::vector<double> sigma;  // (dim, dim) row-major, unbiased (divides by n - 1) like np.cov
};

class FeatureStats {
 public:
  explicit FeatureStats(int64_t dim = 0) : dim_(dim) {}
  // rows (n, dim) row-major; the first call fixes dim when it was 0.
  void add(const float* rows, int64_t n, int64_t dim);
  void add(const double* rows, int64_t n, int64_t dim);
  void add(const FeatureMatrix& m) { add(m.data.data(), m.rows, m.cols); }
  void add(const Tensor& batch);  // (n, dim), any float dtype / device
  int64_t count() const { return n_; }
  int64_t dim() const { return dim_; }
  // Needs at least 2 samples (the covariance divides by n - 1).
  GaussianStats stats() const;

 private:
  void merge(int64_t nb, const std::vector<double>& mean_b, const std::vector<double>& m2_b);
  int64_t dim_ = 0, n_ = 0;
  std::vector<double> mean_, m2_;  // m2_: sum of outer products of deviations (dim, dim)
};

GaussianStats gaussian_stats(const FeatureMatrix& m);

struct FrechetResult {
  double value = 0;       // the distance
  double mean_term = 0;   // ||mu1 - mu2||^2
  double trace_term = 0;  // Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2))
  double trace_sqrt = 0;  // Tr(sqrtm(S1 S2))
  // Eigenvalues below zero (of S1, then of S1^1/2 S2 S1^1/2) that were
  // clamped to zero, and the most negative one: round-off when tiny relative
  // to the largest eigenvalue, a sign of an invalid covariance otherwise.
  int64_t clamped_eigenvalues = 0;
  double most_negative_eigenvalue = 0;
  double largest_eigenvalue = 0;
  // The largest |negative eigenvalue| / largest eigenvalue of the same
  // decomposition (S1's are on the covariances' scale, S1^1/2 S2 S1^1/2's on
  // its square): above 1e-6, a covariance is not positive semi-definite.
  double worst_negative_ratio = 0;
  bool not_psd() const { return worst_negative_ratio > 1e-6; }
};

// Tr(sqrtm(S1 S2)) for symmetric positive semi-definite S1, S2 (row-major
// dim x dim) = sum of sqrt(eigenvalues of S1^1/2 S2 S1^1/2), with S1^1/2
// from S1's eigendecomposition.
FrechetResult trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t dim);

// Warns (core/warning.h; naming the minimum) when either side has fewer samples
// than dimensions, and when a clamped eigenvalue is not round-off.
// Throws naming both dims when they differ.
FrechetResult frechet_distance(const GaussianStats& a, const GaussianStats& b, bool warn = true);

// The warning text for n samples of dim-d features, or "" when n >= dim.
std::string covariance_warning(const std::string& what, int64_t n, int64_t dim);

struct KidResult {
  double mean = 0, std = 0;
  int64_t subsets = 0, subset_size = 0;
  bool whole_sets = false;  // the subsets were both sets whole: one computed, no spread
};
// Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 between random subsets of
// subset_size rows of x and of y (each drawn without replacement, fresh per
// subset, seeded), averaged over `subsets`; std is over the subsets.
// subset_size is reduced to min(rows) with a warning when a set is smaller
// (torch-fidelity's defaults: 100 subsets of 1000); when both sets are that
// size every subset is the whole sets, and one is computed (subsets = 1).
KidResult kernel_inception_distance(const FeatureMatrix& x, const FeatureMatrix& y, int64_t subsets = 100,
                                    int64_t subset_size = 1000, uint64_t seed = 0, bool warn = true);
// One subset's unbiased MMD^2 (all rows of x and y; both need >= 2 rows).
double mmd2_unbiased(const FeatureMatrix& x, const FeatureMatrix& y);

struct IsResult {
  double mean = 0, std = 0;
  int64_t splits = 0;
};
// exp(E_x KL(p(y|x) || p(y))) for each of `splits` consecutive parts of the
// rows (part i = rows [i N / splits, (i+1) N / splits)), p = softmax(logits)
// in float64; mean and (population) std over the parts.
IsResult inception_score(const FeatureMatrix& logits, int64_t splits = 10);
// The same from probabilities (rows summing to 1).
IsResult inception_score_from_probs(const FeatureMatrix& probs, int64_t splits = 10);

struct PrResult {
  double precision = 0, recall = 0;
  int64_t k = 3;
};
// Improved precision and recall: a sample of one set is inside the other's
// manifold when it lies within the k-NN radius (distance to the k-th nearest
// other sample of that set) of at least one of its samples. Precision: the
// fraction of fake samples inside the real manifold; recall: the fraction of
// real samples inside the fake manifold. O(n^2 d) in row blocks.
PrResult precision_recall(const FeatureMatrix& real, const FeatureMatrix& fake, int64_t k = 3);

// ---- statistics cache files ----
struct StatsFile {
  GaussianStats stats;
  std::string feature_net;                      // e.g. "inception-pool3-2048", "fmnist-cnn-128"
  std::optional<FeatureMatrix> features;        // present when saved with features
  std::optional<FeatureMatrix> logits;          // (n, classes), for the Inception Score
  std::map<std::string, std::string> metadata;  // free-form description (data set, resolution, ...)
};
// safetensors with mu (F64 dim), sigma (F64 dim x dim), n (I64 scalar),
// optional features / logits (F32), metadata "feature_net" and the rest of
// `metadata`; written atomically.
void save_stats(const std::string& path, const StatsFile& f);
// Errors name the file and the missing or mis-shaped tensor.
StatsFile load_stats(const std::string& path);

}  // namespace sagan::quality
