// Per-class diversity figures (models/quality/class_diversity.h) on
// hand-made features whose answers are known.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/models/quality/class_diversity.h"

using namespace sagan;
using namespace sagan::quality;

namespace {
FeatureMatrix matrix(int64_t cols, const std::vector<float>& v) {
  FeatureMatrix m;
  m.cols = cols;
  m.rows = static_cast<int64_t>(v.size()) / cols;
  m.data = v;
  return m;
}

// n points evenly on a circle of radius r around (cx, 0).
FeatureMatrix circle(int64_t n, double r, double cx = 0) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) {
    double a = 2 * M_PI * static_cast<double>(i) / static_cast<double>(n);
    v.push_back(static_cast<float>(cx + r * std::cos(a)));
    v.push_back(static_cast<float>(r * std::sin(a)));
  }
  return matrix(2, v);
}
}  // namespace

TEST_CASE("feature_spread is the mean squared distance to the mean", "[eval][diversity]") {
  CHECK(feature_spread(matrix(2, {0, 0, 2, 0, 0, 2, 2, 2})) == Approx(2.0));
  CHECK(feature_spread(matrix(3, {1, 2, 3})) == 0.0);
  CHECK(feature_spread(circle(64, 3.0)) == Approx(9.0).epsilon(1e-6));
  REQUIRE_THROWS_WITH(feature_spread(FeatureMatrix{}), Catch::Contains("feature_spread: needs at least one row"));
}

TEST_CASE("label_accuracy counts rows whose largest logit is the label", "[eval][diversity]") {
  FeatureMatrix logits = matrix(3, {5, 1, 0, 0, 2, 1, 3, 1, 2, -1, -2, -0.5f});
  CHECK(label_accuracy(logits, 0) == Approx(0.5));
  CHECK(label_accuracy(logits, 1) == Approx(0.25));
  CHECK(label_accuracy(logits, 2) == Approx(0.25));
  REQUIRE_THROWS_WITH(label_accuracy(logits, 3), Catch::Contains("label 3 for logits of shape (4, 3)"));
}

TEST_CASE("class_diversity: a collapsed class has high precision, low recall, small spread", "[eval][diversity]") {
  FeatureMatrix real = circle(100, 1.0);
  // Fakes: all near one point of the real circle.
  std::vector<float> f;
  for (int i = 0; i < 100; ++i) {
    f.push_back(1.0f + 0.001f * static_cast<float>(i % 10));
    f.push_back(0.001f * static_cast<float>(i / 10));
  }
  FeatureMatrix fake = matrix(2, f);
  FeatureMatrix real_logits = matrix(2, std::vector<float>(200, 0.0f));
  for (int64_t i = 0; i < 100; ++i) real_logits.data[static_cast<size_t>(2 * i + 1)] = 1;  // all say class 1
  FeatureMatrix fake_logits = real_logits;
  for (int64_t i = 0; i < 30; ++i) fake_logits.data[static_cast<size_t>(2 * i)] = 2;  // 30 say class 0
  ClassDiversity d = class_diversity(1, real, real_logits, fake, fake_logits, 3);
  CHECK(d.label == 1);
  CHECK(d.n_real == 100);
  CHECK(d.precision == Approx(1.0));
  CHECK(d.recall < 0.05);  // only the real points next to (1, 0) are covered
  CHECK(d.spread_real == Approx(1.0).epsilon(1e-6));
  CHECK(d.spread_fake < 1e-4);
  CHECK(d.accuracy_real == Approx(1.0));
  CHECK(d.accuracy_fake == Approx(0.7));
  // The same set against itself: everything covered.
  ClassDiversity same = class_diversity(1, real, real_logits, real, real_logits, 3);
  CHECK(same.precision == Approx(1.0));
  CHECK(same.recall == Approx(1.0));
  REQUIRE_THROWS_WITH(class_diversity(1, real, fake_logits.head(10), fake, fake_logits),
                      Catch::Contains("class 1: 100 real feature rows but 10 logit rows"));
}
