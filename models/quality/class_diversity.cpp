#include "sagan/models/quality/class_diversity.h"

#include "sagan/core/error.h"

namespace sagan::quality {

double feature_spread(const FeatureMatrix& m) {
  SAGAN_CHECK(m.rows >= 1 && m.cols >= 1, "feature_spread: needs at least one row, got ({}, {})", m.rows, m.cols);
  std::vector<double> mean(static_cast<size_t>(m.cols), 0.0);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) mean[static_cast<size_t>(j)] += m.row(i)[j];
  for (double& v : mean) v /= static_cast<double>(m.rows);
  double sq = 0;
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) {
      double d = m.row(i)[j] - mean[static_cast<size_t>(j)];
      sq += d * d;
    }
  return sq / static_cast<double>(m.rows);
}

double label_accuracy(const FeatureMatrix& logits, int64_t label) {
  SAGAN_CHECK(logits.rows >= 1 && label >= 0 && label < logits.cols,
              "label_accuracy: label {} for logits of shape ({}, {})", label, logits.rows, logits.cols);
  int64_t hits = 0;
  for (int64_t i = 0; i < logits.rows; ++i) {
    const float* r = logits.row(i);
    int64_t best = 0;
    for (int64_t j = 1; j < logits.cols; ++j)
      if (r[j] > r[best]) best = j;
    hits += best == label;
  }
  return static_cast<double>(hits) / static_cast<double>(logits.rows);
}

ClassDiversity class_diversity(int64_t label, const FeatureMatrix& real_features, const FeatureMatrix& real_logits,
                               const FeatureMatrix& fake_features, const FeatureMatrix& fake_logits, int64_t k) {
  SAGAN_CHECK(real_features.rows == real_logits.rows && fake_features.rows == fake_logits.rows,
              "class_diversity: class {}: {} real feature rows but {} logit rows, {} fake but {}", label,
              real_features.rows, real_logits.rows, fake_features.rows, fake_logits.rows);
  ClassDiversity d;
  d.label = label;
  d.n_real = real_features.rows;
  d.n_fake = fake_features.rows;
  PrResult pr = precision_recall(real_features, fake_features, k);
  d.precision = pr.precision;
  d.recall = pr.recall;
  d.spread_real = feature_spread(real_features);
  d.spread_fake = feature_spread(fake_features);
  d.accuracy_real = label_accuracy(real_logits, label);
  d.accuracy_fake = label_accuracy(fake_logits, label);
  return d;
}

}  // namespace sagan::quality
