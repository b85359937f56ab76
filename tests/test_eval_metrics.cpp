// Evaluation mathematics (models/quality/metrics.h): closed forms, scipy /
// numpy / torch-fidelity goldens (tests/golden/make_eval_goldens.py),
// statistical properties, cache files and error messages.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "sagan/core/io/safetensors.h"
#include "sagan/core/rng.h"
#include "sagan/core/warning.h"
#include "sagan/models/quality/metrics.h"
#include "tests/golden/eval_goldens.h"

using namespace sagan;
using namespace sagan::quality;
using sagan::testing::golden::eval_goldens;
namespace fs = std::filesystem;

namespace {
const nlohmann::json& metrics() { return eval_goldens().at("metrics"); }

FeatureMatrix golden_matrix(const nlohmann::json& e) {
  FeatureMatrix m;
  auto shape = e.at("shape").get<std::vector<int64_t>>();
  m.rows = shape[0];
  m.cols = shape[1];
  for (double v : e.at("values").get<std::vector<double>>()) m.data.push_back(static_cast<float>(v));
  return m;
}

// n samples of N(mean, diag(scale^2)) in d dims.
FeatureMatrix gaussian(int64_t n, int64_t d, Rng& gen, double mean = 0.0, double scale = 1.0) {
  FeatureMatrix m;
  m.rows = n;
  m.cols = d;
  for (int64_t i = 0; i < n * d; ++i) m.data.push_back(static_cast<float>(mean + scale * gen.normal()));
  return m;
}

GaussianStats stats_of(std::vector<double> mu, std::vector<double> sigma) {
  GaussianStats s;
  s.dim = static_cast<int64_t>(mu.size());
  s.n = 1000000;
  s.mu = std::move(mu);
  s.sigma = std::move(sigma);
  return s;
}

std::vector<double> diag(const std::vector<double>& d) {
  const size_t n = d.size();
  std::vector<double> m(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) m[i * n + i] = d[i];
  return m;
}
}  // namespace

TEST_CASE("incremental feature statistics equal np.mean / np.cov in any batching", "[eval_metrics]") {
  const auto& g = metrics().at("cov");
  FeatureMatrix x = golden_matrix(g.at("x"));  // (37, 5)
  std::vector<double> mu = g.at("mu").get<std::vector<double>>(), sigma = g.at("sigma").get<std::vector<double>>();
  // float32 features: the golden used float64 inputs, so compare at float precision.
  GaussianStats all = gaussian_stats(x);
  CHECK(all.n == 37);
  for (size_t i = 0; i < mu.size(); ++i) CHECK(all.mu[i] == Approx(mu[i]).margin(1e-6));
  for (size_t i = 0; i < sigma.size(); ++i) CHECK(all.sigma[i] == Approx(sigma[i]).margin(1e-5));
  // Uneven batches (1, 5, 31 rows) give the same statistics to round-off.
  FeatureStats fs;
  fs.add(x.row(0), 1, 5);
  fs.add(x.row(1), 5, 5);
  fs.add(x.row(6), 31, 5);
  GaussianStats inc = fs.stats();
  for (size_t i = 0; i < mu.size(); ++i) CHECK(inc.mu[i] == Approx(all.mu[i]).margin(1e-12));
  for (size_t i = 0; i < sigma.size(); ++i) CHECK(inc.sigma[i] == Approx(all.sigma[i]).margin(1e-12));
  // A large common offset does not destroy the covariance: a float32
  // accumulator of sums of squares would (a float64 one loses only ~1e-10
  // here; the offset cannot grow further in float32 features).
  FeatureMatrix shifted = x;
  for (float& v : shifted.data) v += 1000.0f;
  GaussianStats sh = gaussian_stats(shifted);
  for (size_t i = 0; i < sigma.size(); ++i) CHECK(sh.sigma[i] == Approx(all.sigma[i]).margin(2e-3));
  REQUIRE_THROWS_WITH(FeatureStats().stats(), Catch::Contains("FeatureStats: a covariance needs at least 2 samples"));
  REQUIRE_THROWS_WITH(fs.add(x.row(0), 1, 4),
                      Catch::Contains("FeatureStats: adding 4-d features to statistics of 5-d"));
}

TEST_CASE("Frechet distance of identical statistics is 0", "[eval_metrics]") {
  Rng gen(1);
  FeatureMatrix x = gaussian(300, 24, gen, 0.3, 2.0);
  GaussianStats s = gaussian_stats(x);
  FrechetResult r = frechet_distance(s, s);
  CHECK(std::abs(r.value) < 1e-8);
  // Also for a singular covariance (fewer samples than dimensions).
  GaussianStats few = gaussian_stats(x.head(10));
  CHECK(std::abs(frechet_distance(few, few, false).value) < 1e-8);
}

TEST_CASE("Frechet distance of known Gaussians equals the closed form", "[eval_metrics]") {
  // Diagonal covariances commute: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  std::vector<double> a{1.0, 4.0, 0.25, 9.0}, b{2.0, 1.0, 1.0, 0.5};
  std::vector<double> m1{0, 1, 2, 3}, m2{1, 1, 0, 3};
  double expect = 1 + 0 + 4 + 0;
  for (size_t i = 0; i < a.size(); ++i) expect += std::pow(std::sqrt(a[i]) - std::sqrt(b[i]), 2);
  FrechetResult r = frechet_distance(stats_of(m1, diag(a)), stats_of(m2, diag(b)));
  CHECK(r.value == Approx(expect).epsilon(1e-12));
  CHECK(r.mean_term == Approx(5.0).epsilon(1e-14));
  // Isotropic S1 = s I against any S2: Tr sqrtm(s S2) = sqrt(s) Tr sqrtm(S2);
  // S2 = R diag(b) R^T with a rotation, so S2 is not diagonal.
  const double c = std::cos(0.7), s = std::sin(0.7);
  std::vector<double> s2{c * c * 2 + s * s * 5, c * s * (2 - 5), c * s * (2 - 5), s * s * 2 + c * c * 5};
  FrechetResult r2 = frechet_distance(stats_of({0, 0}, diag({3, 3})), stats_of({0, 0}, s2));
  CHECK(r2.trace_sqrt == Approx(std::sqrt(3.0) * (std::sqrt(2.0) + std::sqrt(5.0))).epsilon(1e-12));
  CHECK(r2.value == Approx(6 + 7 - 2 * std::sqrt(3.0) * (std::sqrt(2.0) + std::sqrt(5.0))).epsilon(1e-12));
}

TEST_CASE("Frechet distance and Tr sqrtm(S1 S2) match scipy.linalg.sqrtm (pytorch-fid)", "[eval_metrics]") {
  const auto& g = metrics().at("fid");
  const int64_t d = g.at("dim").get<int64_t>();
  auto v = [&](const char* k) { return g.at(k).get<std::vector<double>>(); };
  FrechetResult r = frechet_distance(stats_of(v("mu1"), v("s1")), stats_of(v("mu2"), v("s2")));
  CHECK(r.value == Approx(g.at("fd").get<double>()).epsilon(1e-10));
  CHECK(r.trace_sqrt == Approx(g.at("trace_sqrt").get<double>()).epsilon(1e-10));
  CHECK(r.clamped_eigenvalues == 0);
  // Rank-deficient S (3 samples in 6-d): eigenvalues at round-off level are clamped, not an error.
  FrechetResult rd = trace_sqrt_product(v("s3"), v("s2"), d);
  CHECK(rd.trace_sqrt == Approx(g.at("trace_sqrt_rank_deficient").get<double>()).epsilon(1e-7));
  CHECK(rd.most_negative_eigenvalue > -1e-12 * rd.largest_eigenvalue);
  FrechetResult fd3 = frechet_distance(stats_of(v("mu1"), v("s3")), stats_of(v("mu2"), v("s2")), false);
  CHECK(fd3.value == Approx(g.at("fd_rank_deficient").get<double>()).epsilon(1e-7));
}

TEST_CASE("Frechet distance reports clamped eigenvalues and warns about small samples", "[eval_metrics]") {
  // An indefinite "covariance": the negative eigenvalue is clamped and reported.
  FrechetResult r = trace_sqrt_product(diag({1.0, -0.5}), diag({1.0, 1.0}), 2);
  CHECK(r.clamped_eigenvalues >= 1);
  CHECK(r.most_negative_eigenvalue == Approx(-0.5));
  CHECK(r.trace_sqrt == Approx(1.0));
  CHECK(covariance_warning("FID", 2048, 2048).empty());
  CHECK_THAT(covariance_warning("FID", 500, 2048),
             Catch::Contains("500 samples for 2048-d features") && Catch::Contains("use at least 2048 samples"));
  REQUIRE_THROWS_WITH(frechet_distance(stats_of({0, 0}, diag({1, 1})), stats_of({0, 0, 0}, diag({1, 1, 1}))),
                      Catch::Contains("frechet_distance: statistics of 2-d and 3-d features"));
}

TEST_CASE("KID: unbiased MMD^2 matches torch-fidelity, is ~0 within a distribution", "[eval_metrics]") {
  const auto& g = metrics().at("kid");
  FeatureMatrix x = golden_matrix(g.at("x")), y = golden_matrix(g.at("y"));
  const double golden = g.at("mmd2").get<double>();
  CHECK(mmd2_unbiased(x, y) == Approx(golden).epsilon(1e-5));  // float32 features
  // Subsets as large as the sets are permutations of them: every subset gives the same value.
  // So one subset is computed, and reported as one (no spread to give).
  KidResult full = kernel_inception_distance(x, y, 3, 30, 0);
  CHECK(full.mean == Approx(golden).epsilon(1e-5));
  CHECK(full.std == 0);
  CHECK(full.subsets == 1);
  CHECK(full.whole_sets);
  CHECK_FALSE(kernel_inception_distance(x, y, 1, 20, 0).whole_sets);  // one subset, but not the whole sets
  CHECK(full.subset_size == 30);

  Rng gen(2);
  FeatureMatrix a = gaussian(1500, 16, gen), b = gaussian(1500, 16, gen);
  KidResult same = kernel_inception_distance(a, b, 50, 200, 1);
  INFO("same distribution: " << same.mean << " +- " << same.std);
  // Unbiased: the mean over subsets is within a few subset std of 0 (a
  // biased estimator would sit near +E k(x, x) / m, far above).
  CHECK(std::abs(same.mean) < 3 * same.std);
  FeatureMatrix c = gaussian(1500, 16, gen, 0.5);
  KidResult diff = kernel_inception_distance(a, c, 50, 200, 1);
  CHECK(diff.mean > 5 * diff.std);
  CHECK(diff.mean > 0.01);
  // Smaller sets than the subset size: the subset shrinks (with a warning).
  CHECK(kernel_inception_distance(x, y, 2, 1000, 0, false).subset_size == 30);
  REQUIRE_THROWS_WITH(mmd2_unbiased(x.head(1), y), Catch::Contains("kid: the unbiased MMD needs at least 2 samples"));
  REQUIRE_THROWS_WITH(kernel_inception_distance(x, a), Catch::Contains("kid: features of width 8 and 16"));
}

TEST_CASE("Inception Score: uniform predictions give 1, confident balanced ones give K", "[eval_metrics]") {
  FeatureMatrix uniform;
  uniform.rows = 100;
  uniform.cols = 7;
  uniform.data.assign(700, 0.3f);
  IsResult u = inception_score(uniform, 10);
  CHECK(u.mean == Approx(1.0).epsilon(1e-12));
  CHECK(u.std < 1e-12);
  const int64_t K = 10;
  FeatureMatrix onehot;
  onehot.rows = 200;
  onehot.cols = K;
  onehot.data.assign(static_cast<size_t>(200 * K), 0.0f);
  for (int64_t i = 0; i < 200; ++i)
    onehot.data[static_cast<size_t>(i * K + i % K)] = 60.0f;  // each split uses every class equally
  IsResult o = inception_score(onehot, 10);
  CHECK(o.mean == Approx(static_cast<double>(K)).epsilon(1e-9));
  // From probabilities (exact one-hot: 0 log 0 = 0).
  for (float& v : onehot.data) v = v > 0 ? 1.0f : 0.0f;
  CHECK(inception_score_from_probs(onehot, 10).mean == Approx(static_cast<double>(K)).epsilon(1e-12));
  // Golden: the original code's splits and KL on random logits.
  const auto& g = metrics().at("is");
  IsResult r = inception_score(golden_matrix(g.at("logits")), g.at("splits").get<int64_t>());
  CHECK(r.mean == Approx(g.at("mean").get<double>()).epsilon(1e-6));
  CHECK(r.std == Approx(g.at("std").get<double>()).epsilon(1e-5));
  REQUIRE_THROWS_WITH(inception_score(uniform.head(5), 10),
                      Catch::Contains("inception_score: 5 samples cannot be divided into 10 splits"));
}

TEST_CASE("precision/recall: identical sets 1, far disjoint sets 0, reference code on a small case", "[eval_metrics]") {
  Rng gen(4);
  FeatureMatrix a = gaussian(300, 8, gen);
  PrResult same = precision_recall(a, a, 3);
  CHECK(same.precision == 1.0);
  CHECK(same.recall == 1.0);
  FeatureMatrix far = gaussian(250, 8, gen, 100.0);
  PrResult dis = precision_recall(a, far, 3);
  CHECK(dis.precision == 0.0);
  CHECK(dis.recall == 0.0);
  // Mode dropping: fakes from one half of the real distribution keep precision, lose recall.
  FeatureMatrix half;
  half.cols = 8;
  for (int64_t i = 0; i < a.rows; ++i)
    if (a.row(i)[0] > 0.3f) {
      half.data.insert(half.data.end(), a.row(i), a.row(i) + 8);
      ++half.rows;
    }
  PrResult drop = precision_recall(a, half, 3);
  CHECK(drop.precision == 1.0);
  CHECK(drop.recall < 0.8);
  const auto& g = metrics().at("pr");
  PrResult r = precision_recall(golden_matrix(g.at("real")), golden_matrix(g.at("fake")), g.at("k").get<int64_t>());
  CHECK(r.precision == Approx(g.at("precision").get<double>()));
  CHECK(r.recall == Approx(g.at("recall").get<double>()));
  REQUIRE_THROWS_WITH(precision_recall(a.head(3), a, 3),
                      Catch::Contains("precision_recall: k = 3 needs more than 3 samples per set, got 3 real"));
}

TEST_CASE("statistics cache files round-trip and name what is wrong", "[eval_metrics]") {
  fs::path dir = fs::temp_directory_path() / "sagan_test_eval_stats";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Rng gen(6);
  FeatureMatrix x = gaussian(40, 5, gen);
  StatsFile f;
  f.stats = gaussian_stats(x);
  f.feature_net = "test-net";
  f.features = x;
  f.logits = gaussian(40, 3, gen);
  f.metadata["data"] = "forty gaussians";
  const std::string path = (dir / "s.safetensors").string();
  save_stats(path, f);
  StatsFile g = load_stats(path);
  CHECK(g.feature_net == "test-net");
  CHECK(g.metadata.at("data") == "forty gaussians");
  CHECK(g.stats.n == 40);
  CHECK(g.stats.mu == f.stats.mu);
  CHECK(g.stats.sigma == f.stats.sigma);
  REQUIRE(g.features);
  CHECK(g.features->data == x.data);
  REQUIRE(g.logits);
  CHECK(g.logits->rows == 40);
  CHECK(frechet_distance(f.stats, g.stats).value == Approx(0.0).margin(1e-10));
  // Statistics only.
  StatsFile lean = f;
  lean.features.reset();
  lean.logits.reset();
  save_stats(path, lean);
  CHECK_FALSE(load_stats(path).features.has_value());
  // Mis-shaped and missing tensors, missing metadata.
  io::save_safetensors(path,
                       {{"mu", Tensor::zeros({5}, DType::F64)},
                        {"sigma", Tensor::zeros({5, 4}, DType::F64)},
                        {"n", Tensor::from_vector(std::vector<int64_t>{3}, {})}},
                       {{"feature_net", "x"}});
  REQUIRE_THROWS_WITH(load_stats(path), Catch::Contains("tensor 'sigma' must be 5x5, got [5, 4]"));
  io::save_safetensors(path, {{"mu", Tensor::zeros({5}, DType::F64)}}, {{"feature_net", "x"}});
  REQUIRE_THROWS_WITH(load_stats(path), Catch::Contains("s.safetensors: no tensor 'sigma'"));
  // Features and logits of another count than n (a file edited or pieced together).
  StatsFile cut = f;
  cut.features = gaussian(39, 5, gen);
  save_stats(path, cut);
  REQUIRE_THROWS_WITH(load_stats(path),
                      Catch::Contains("tensor 'features' must be (40, 5) (n, mu's size), got [39, 5]"));
  cut = f;
  cut.logits = gaussian(20, 3, gen);
  save_stats(path, cut);
  REQUIRE_THROWS_WITH(load_stats(path), Catch::Contains("tensor 'logits' must be (40, classes) (n rows), got [20, 3]"));
  io::save_safetensors(path, {{"mu", Tensor::zeros({5}, DType::F64)}});
  REQUIRE_THROWS_WITH(load_stats(path), Catch::Contains("no 'feature_net' metadata"));
  fs::remove_all(dir);
}

TEST_CASE("metric warnings go to the installed warning handler", "[eval_metrics]") {
  std::vector<std::string> got;
  WarningHandler old = set_warning_handler([&](const std::string& t) { got.push_back(t); });
  quality::GaussianStats a;
  a.dim = 3;
  a.n = 2;  // fewer samples than dimensions
  a.mu = {0, 0, 0};
  a.sigma = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  quality::frechet_distance(a, a);
  set_warning_handler(old);
  REQUIRE(got.size() == 2);
  CHECK_THAT(got[0], Catch::Contains("frechet_distance (first set)"));
}
