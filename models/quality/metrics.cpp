#include "sagan/models/quality/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include "sagan/core/eigen.h"

#include "sagan/core/io/safetensors.h"
#include "sagan/core/rng.h"
#include "sagan/core/warning.h"

namespace sagan::quality {

namespace {
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecD = Eigen::VectorXd;

Eigen::Map<const MatF> fmap(const FeatureMatrix& m) { return {m.data.data(), m.rows, m.cols}; }

// Rows `idx` of m as a float64 matrix.
MatD gather_rows(const FeatureMatrix& m, const std::vector<int64_t>& idx) {
  MatD out(static_cast<int64_t>(idx.size()), m.cols);
  for (size_t i = 0; i < idx.size(); ++i)
    for (int64_t j = 0; j < m.cols; ++j) out(static_cast<int64_t>(i), j) = m.row(idx[i])[j];
  return out;
}

MatD all_rows(const FeatureMatrix& m) { return fmap(m).cast<double>(); }
}  // namespace

// ---------------------------------------------------------------- FeatureMatrix

void FeatureMatrix::append(const Tensor& batch) {
  SAGAN_CHECK(batch.defined() && batch.dim() == 2, "FeatureMatrix: expected a (n, d) tensor, got {}",
              batch.defined() ? shape_str(batch.shape()) : std::string("undefined"));
  SAGAN_CHECK(rows == 0 || batch.size(1) == cols, "FeatureMatrix: appending {} to features of width {}",
              shape_str(batch.shape()), cols);
  cols = batch.size(1);
  std::vector<float> v = batch.to_float_vector();
  data.insert(data.end(), v.begin(), v.end());
  rows += batch.size(0);
}

Tensor FeatureMatrix::to_tensor() const { return Tensor::from_vector(data, {rows, cols}); }

FeatureMatrix FeatureMatrix::from_tensor(const Tensor& t) {
  FeatureMatrix m;
  m.append(t);
  return m;
}

FeatureMatrix FeatureMatrix::head(int64_t n) const {
  FeatureMatrix m;
  m.rows = std::min(n, rows);
  m.cols = cols;
  m.data.assign(data.begin(), data.begin() + m.rows * cols);
  return m;
}

// ---------------------------------------------------------------- FeatureStats

void FeatureStats::merge(int64_t nb, const std::vector<double>& mean_b, const std::vector<double>& m2_b) {
  const int64_t d = dim_;
  if (n_ == 0) {
    n_ = nb;
    mean_ = mean_b;
    m2_ = m2_b;
    return;
  }
  // Chan et al.: M2 = M2a + M2b + delta delta^T na nb / n.
  const double na = static_cast<double>(n_), nbd = static_cast<double>(nb), n = na + nbd;
  Eigen::Map<VecD> mean(mean_.data(), d);
  Eigen::Map<const VecD> mb(mean_b.data(), d);
  VecD delta = mb - mean;
  Eigen::Map<MatD> m2(m2_.data(), d, d);
  m2 += Eigen::Map<const MatD>(m2_b.data(), d, d);
  m2.selfadjointView<Eigen::Lower>().rankUpdate(delta, na * nbd / n);
  mean += delta * (nbd / n);
  n_ += nb;
}

void FeatureStats::add(const double* rows, int64_t n, int64_t dim) {
  SAGAN_CHECK(dim > 0, "FeatureStats: feature dimension must be positive, got {}", dim);
  SAGAN_CHECK(dim_ == 0 || dim == dim_, "FeatureStats: adding {}-d features to statistics of {}-d features", dim, dim_);
  if (n <= 0) return;
  if (dim_ == 0) dim_ = dim;
  Eigen::Map<const MatD> x(rows, n, dim);
  VecD mb = x.colwise().mean().transpose();
  MatD c = x.rowwise() - mb.transpose();
  std::vector<double> m2b(static_cast<size_t>(dim * dim), 0.0);
  Eigen::Map<MatD> m2(m2b.data(), dim, dim);
  m2.selfadjointView<Eigen::Lower>().rankUpdate(c.transpose());  // lower triangle only
  merge(n, std::vector<double>(mb.data(), mb.data() + dim), m2b);
}

void FeatureStats::add(const float* rows, int64_t n, int64_t dim) {
  std::vector<double> d(rows, rows + n * dim);
  add(d.data(), n, dim);
}

void FeatureStats::add(const Tensor& batch) {
  SAGAN_CHECK(batch.defined() && batch.dim() == 2, "FeatureStats: expected a (n, d) tensor, got {}",
              batch.defined() ? shape_str(batch.shape()) : std::string("undefined"));
  std::vector<double> v = batch.to_vector();
  add(v.data(), batch.size(0), batch.size(1));
}

GaussianStats FeatureStats::stats() const {
  SAGAN_CHECK(n_ >= 2, "FeatureStats: a covariance needs at least 2 samples, got {}", n_);
  GaussianStats s;
  s.n = n_;
  s.dim = dim_;
  s.mu = mean_;
  s.sigma.resize(static_cast<size_t>(dim_ * dim_));
  Eigen::Map<const MatD> m2(m2_.data(), dim_, dim_);
  Eigen::Map<MatD> sig(s.sigma.data(), dim_, dim_);
  sig = m2.selfadjointView<Eigen::Lower>();
  sig /= static_cast<double>(n_ - 1);
  return s;
}

GaussianStats gaussian_stats(const FeatureMatrix& m) {
  FeatureStats fs(m.cols);
  // In blocks so the float64 copy stays small.
  const int64_t block = 1024;
  for (int64_t i = 0; i < m.rows; i += block) fs.add(m.row(i), std::min(block, m.rows - i), m.cols);
  return fs.stats();
}

// ---------------------------------------------------------------- Frechet distance

namespace {
// Eigenvalues below zero are clamped; the result records them.
void note_clamped(const VecD& ev, FrechetResult& r) {
  double largest = 0, most_negative = 0;
  for (int64_t i = 0; i < ev.size(); ++i) {
    largest = std::max(largest, std::abs(ev[i]));
    if (ev[i] < 0) {
      ++r.clamped_eigenvalues;
      most_negative = std::min(most_negative, ev[i]);
    }
  }
  r.largest_eigenvalue = std::max(r.largest_eigenvalue, largest);
  r.most_negative_eigenvalue = std::min(r.most_negative_eigenvalue, most_negative);
  if (most_negative < 0) r.worst_negative_ratio = std::max(r.worst_negative_ratio, -most_negative / largest);
}

// Square roots of eigenvalues, with those within round-off of zero (below
// dim * eps * the largest) taken as zero: a rank-deficient covariance (fewer
// samples than dimensions) has exact zeros that the solver returns as +-1e-16
// of the scale, and sqrt would turn each into 1e-8 of it.
VecD sqrt_eigenvalues(const VecD& ev) {
  const double largest = ev.size() > 0 ? ev.cwiseAbs().maxCoeff() : 0.0;
  const double tiny = static_cast<double>(ev.size()) * std::numeric_limits<double>::epsilon() * largest;
  return ev.unaryExpr([tiny](double x) { return x <= tiny ? 0.0 : std::sqrt(x); });
}
}  // namespace

FrechetResult trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t dim) {
  SAGAN_CHECK(dim > 0 && s1.size() == static_cast<size_t>(dim * dim) && s2.size() == s1.size(),
              "trace_sqrt_product: need two {}x{} matrices, got {} and {} elements", dim, dim, s1.size(), s2.size());
  Eigen::Map<const MatD> a(s1.data(), dim, dim), b(s2.data(), dim, dim);
  // Symmetrise: stored covariances may differ from symmetric by round-off.
  const MatD A = 0.5 * (a + a.transpose()), B = 0.5 * (b + b.transpose());
  FrechetResult r;
  Eigen::SelfAdjointEigenSolver<MatD> es1(A);
  SAGAN_CHECK(es1.info() == Eigen::Success, "trace_sqrt_product: eigendecomposition of S1 ({}x{}) did not converge",
              dim, dim);
  note_clamped(es1.eigenvalues(), r);
  VecD root = sqrt_eigenvalues(es1.eigenvalues());
  const MatD& V = es1.eigenvectors();
  MatD a_half = V * root.asDiagonal() * V.transpose();
  MatD m = a_half * B * a_half;
  m = 0.5 * (m + m.transpose()).eval();
  Eigen::SelfAdjointEigenSolver<MatD> es2(m, Eigen::EigenvaluesOnly);
  SAGAN_CHECK(es2.info() == Eigen::Success,
              "trace_sqrt_product: eigendecomposition of S1^1/2 S2 S1^1/2 ({}x{}) did not converge", dim, dim);
  note_clamped(es2.eigenvalues(), r);
  r.trace_sqrt = sqrt_eigenvalues(es2.eigenvalues()).sum();
  return r;
}

std::string covariance_warning(const std::string& what, int64_t n, int64_t dim) {
  if (n >= dim) return "";
  return fmt::format(
      "{}: {} samples for {}-d features: the covariance is rank-deficient and the Frechet distance biased and "
      "unstable; use at least {} samples (10000 or more, 50000 by convention)",
      what, n, dim, dim);
}

FrechetResult frechet_distance(const GaussianStats& a, const GaussianStats& b, bool do_warn) {
  SAGAN_CHECK(a.dim > 0 && a.dim == b.dim, "frechet_distance: statistics of {}-d and {}-d features", a.dim, b.dim);
  SAGAN_CHECK(a.mu.size() == static_cast<size_t>(a.dim) && b.mu.size() == static_cast<size_t>(b.dim),
              "frechet_distance: mean sizes {} and {} do not match dim {}", a.mu.size(), b.mu.size(), a.dim);
  if (do_warn) {
    warn(covariance_warning("frechet_distance (first set)", a.n, a.dim));
    warn(covariance_warning("frechet_distance (second set)", b.n, b.dim));
  }
  FrechetResult r = trace_sqrt_product(a.sigma, b.sigma, a.dim);
  const int64_t d = a.dim;
  Eigen::Map<const VecD> m1(a.mu.data(), d), m2(b.mu.data(), d);
  Eigen::Map<const MatD> s1(a.sigma.data(), d, d), s2(b.sigma.data(), d, d);
  r.mean_term = (m1 - m2).squaredNorm();
  r.trace_term = s1.trace() + s2.trace() - 2.0 * r.trace_sqrt;
  r.value = r.mean_term + r.trace_term;
  if (do_warn && r.not_psd())
    warn(
        fmt::format("frechet_distance: clamped {} negative eigenvalue(s) down to {:.3e} (largest {:.3e}): a "
                    "covariance is not positive semi-definite",
                    r.clamped_eigenvalues, r.most_negative_eigenvalue, r.largest_eigenvalue));
  return r;
}

// ---------------------------------------------------------------- KID

namespace {
// Sum of the cubic kernel (x.y / d + 1)^3 over all pairs, and over the
// diagonal when x and y are the same set.
double kernel_sum(const MatD& x, const MatD& y, double inv_d, bool same, double* diag_sum) {
  MatD k = (x * y.transpose()) * inv_d;
  k.array() += 1.0;
  k = k.array().cube().matrix();
  if (same && diag_sum) *diag_sum = k.diagonal().sum();
  return k.sum();
}

double mmd2_of(const MatD& x, const MatD& y) {
  const double m = static_cast<double>(x.rows()), n = static_cast<double>(y.rows());
  const double inv_d = 1.0 / static_cast<double>(x.cols());
  double dx = 0, dy = 0;
  const double kxx = kernel_sum(x, x, inv_d, true, &dx);
  const double kyy = kernel_sum(y, y, inv_d, true, &dy);
  const double kxy = kernel_sum(x, y, inv_d, false, nullptr);
  return (kxx - dx) / (m * (m - 1)) + (kyy - dy) / (n * (n - 1)) - 2.0 * kxy / (m * n);
}

// m distinct indices in [0, n): a partial Fisher-Yates shuffle.
std::vector<int64_t> sample_without_replacement(int64_t n, int64_t m, Rng& gen) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (int64_t i = 0; i < m; ++i) {
    int64_t j = i + static_cast<int64_t>(gen.below(static_cast<uint64_t>(n - i)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  p.resize(static_cast<size_t>(m));
  return p;
}
}  // namespace

double mmd2_unbiased(const FeatureMatrix& x, const FeatureMatrix& y) {
  SAGAN_CHECK(x.cols == y.cols && x.cols > 0, "kid: features of width {} and {}", x.cols, y.cols);
  SAGAN_CHECK(x.rows >= 2 && y.rows >= 2, "kid: the unbiased MMD needs at least 2 samples per set, got {} and {}",
              x.rows, y.rows);
  return mmd2_of(all_rows(x), all_rows(y));
}

KidResult kernel_inception_distance(const FeatureMatrix& x, const FeatureMatrix& y, int64_t subsets,
                                    int64_t subset_size, uint64_t seed, bool do_warn) {
  SAGAN_CHECK(x.cols == y.cols && x.cols > 0, "kid: features of width {} and {}", x.cols, y.cols);
  SAGAN_CHECK(subsets >= 1 && subset_size >= 2, "kid: need subsets >= 1 and subset size >= 2, got {} and {}", subsets,
              subset_size);
  SAGAN_CHECK(x.rows >= 2 && y.rows >= 2, "kid: the unbiased MMD needs at least 2 samples per set, got {} and {}",
              x.rows, y.rows);
  const int64_t m = std::min({subset_size, x.rows, y.rows});
  if (do_warn && m < subset_size)
    warn(fmt::format("kid: subsets of {} samples requested but the sets have {} and {}; using {}", subset_size, x.rows,
                     y.rows, m));
  // Subsets as large as both sets are the sets themselves, every time: one
  // subset, and no spread to report (it would print +- 0).
  const bool whole_sets = m == x.rows && m == y.rows;
  if (whole_sets) subsets = 1;
  Rng gen(seed);
  std::vector<double> v;
  for (int64_t s = 0; s < subsets; ++s) {
    MatD xs = gather_rows(x, sample_without_replacement(x.rows, m, gen));
    MatD ys = gather_rows(y, sample_without_replacement(y.rows, m, gen));
    v.push_back(mmd2_of(xs, ys));
  }
  KidResult r;
  r.whole_sets = whole_sets;
  r.subsets = subsets;
  r.subset_size = m;
  r.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double var = 0;
  for (double e : v) var += (e - r.mean) * (e - r.mean);
  r.std = std::sqrt(var / static_cast<double>(v.size()));
  return r;
}

// ---------------------------------------------------------------- Inception Score

namespace {
void check_splits(int64_t rows, int64_t cols, int64_t splits) {
  SAGAN_CHECK(splits >= 1, "inception_score: splits must be >= 1, got {}", splits);
  SAGAN_CHECK(rows >= splits && cols >= 1, "inception_score: {} samples cannot be divided into {} splits", rows,
              splits);
}

// logp (N, K) row-major log-probabilities, float64 so the tails KL needs survive.
IsResult score_from_logp(const std::vector<double>& logp, int64_t N, int64_t K, int64_t splits) {
  std::vector<double> scores;
  for (int64_t s = 0; s < splits; ++s) {
    const int64_t a = s * N / splits, b = (s + 1) * N / splits;
    std::vector<double> py(static_cast<size_t>(K), 0.0);
    for (int64_t i = a; i < b; ++i)
      for (int64_t c = 0; c < K; ++c) py[static_cast<size_t>(c)] += std::exp(logp[static_cast<size_t>(i * K + c)]);
    for (double& p : py) p /= static_cast<double>(b - a);
    double kl = 0;
    for (int64_t i = a; i < b; ++i)
      for (int64_t c = 0; c < K; ++c) {
        const double lp = logp[static_cast<size_t>(i * K + c)], p = std::exp(lp);
        if (p > 0) kl += p * (lp - std::log(py[static_cast<size_t>(c)]));  // 0 log 0 = 0
      }
    scores.push_back(std::exp(kl / static_cast<double>(b - a)));
  }
  IsResult r;
  r.splits = splits;
  r.mean = std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(splits);
  double var = 0;
  for (double e : scores) var += (e - r.mean) * (e - r.mean);
  r.std = std::sqrt(var / static_cast<double>(splits));
  return r;
}
}  // namespace

IsResult inception_score_from_probs(const FeatureMatrix& probs, int64_t splits) {
  check_splits(probs.rows, probs.cols, splits);
  std::vector<double> logp(probs.data.size());
  for (size_t i = 0; i < logp.size(); ++i)
    logp[i] =
        probs.data[i] > 0 ? std::log(static_cast<double>(probs.data[i])) : -std::numeric_limits<double>::infinity();
  return score_from_logp(logp, probs.rows, probs.cols, splits);
}

IsResult inception_score(const FeatureMatrix& logits, int64_t splits) {
  check_splits(logits.rows, logits.cols, splits);
  const int64_t N = logits.rows, K = logits.cols;
  std::vector<double> logp(static_cast<size_t>(N * K));
  for (int64_t i = 0; i < N; ++i) {
    const float* l = logits.row(i);
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < K; ++c) mx = std::max(mx, static_cast<double>(l[c]));
    double z = 0;
    for (int64_t c = 0; c < K; ++c) z += std::exp(l[c] - mx);
    const double lz = mx + std::log(z);
    for (int64_t c = 0; c < K; ++c) logp[static_cast<size_t>(i * K + c)] = l[c] - lz;
  }
  return score_from_logp(logp, N, K, splits);
}

// ---------------------------------------------------------------- precision / recall

namespace {
constexpr int64_t kBlockRows = 1024;

// Squared distances between rows [i0, i0 + rows) of a and every row of b.
MatF block_sq_dist(const FeatureMatrix& a, int64_t i0, int64_t rows, const FeatureMatrix& b,
                   const Eigen::VectorXf& bn) {
  Eigen::Map<const MatF> ab(a.row(i0), rows, a.cols);
  Eigen::VectorXf an = ab.rowwise().squaredNorm();
  MatF d = -2.0f * (ab * fmap(b).transpose());
  d.colwise() += an;
  d.rowwise() += bn.transpose();
  return d.cwiseMax(0.0f);
}

// Squared distance from each row of s to its k-th nearest other row.
std::vector<float> knn_radii_sq(const FeatureMatrix& s, int64_t k) {
  Eigen::VectorXf sn = fmap(s).rowwise().squaredNorm();
  std::vector<float> r(static_cast<size_t>(s.rows));
  for (int64_t i0 = 0; i0 < s.rows; i0 += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, s.rows - i0);
    MatF d = block_sq_dist(s, i0, rows, s, sn);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      std::vector<float> row(d.row(i).data(), d.row(i).data() + s.rows);
      row[static_cast<size_t>(i0 + i)] = 0.0f;  // itself, exactly
      // Index k counts the sample itself at index 0 (as the reference code does).
      std::nth_element(row.begin(), row.begin() + k, row.end());
      r[static_cast<size_t>(i0 + i)] = row[static_cast<size_t>(k)];
    }
  }
  return r;
}

// Fraction of rows of q within radius of some row of ref.
double coverage(const FeatureMatrix& q, const FeatureMatrix& ref, const std::vector<float>& radii_sq) {
  Eigen::VectorXf rn = fmap(ref).rowwise().squaredNorm();
  int64_t inside = 0;
  for (int64_t i0 = 0; i0 < q.rows; i0 += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, q.rows - i0);
    MatF d = block_sq_dist(q, i0, rows, ref, rn);
#pragma omp parallel for schedule(static) reduction(+ : inside)
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < ref.rows; ++j)
        if (d(i, j) <= radii_sq[static_cast<size_t>(j)]) {
          ++inside;
          break;
        }
    }
  }
  return static_cast<double>(inside) / static_cast<double>(q.rows);
}
}  // namespace

PrResult precision_recall(const FeatureMatrix& real, const FeatureMatrix& fake, int64_t k) {
  SAGAN_CHECK(real.cols == fake.cols && real.cols > 0, "precision_recall: features of width {} and {}", real.cols,
              fake.cols);
  SAGAN_CHECK(k >= 1, "precision_recall: k must be >= 1, got {}", k);
  SAGAN_CHECK(real.rows > k && fake.rows > k,
              "precision_recall: k = {} needs more than {} samples per set, got {} real and {} fake", k, k, real.rows,
              fake.rows);
  PrResult r;
  r.k = k;
  std::vector<float> real_r = knn_radii_sq(real, k), fake_r = knn_radii_sq(fake, k);
  r.precision = coverage(fake, real, real_r);
  r.recall = coverage(real, fake, fake_r);
  return r;
}

// ---------------------------------------------------------------- cache files

void save_stats(const std::string& path, const StatsFile& f) {
  const GaussianStats& s = f.stats;
  SAGAN_CHECK(
      s.dim > 0 && s.mu.size() == static_cast<size_t>(s.dim) && s.sigma.size() == static_cast<size_t>(s.dim * s.dim),
      "save_stats: {}: inconsistent statistics (dim {}, mu {}, sigma {})", path, s.dim, s.mu.size(), s.sigma.size());
  NamedTensors t = {{"mu", Tensor::from_vector(s.mu, {s.dim}, DType::F64)},
                    {"sigma", Tensor::from_vector(s.sigma, {s.dim, s.dim}, DType::F64)},
                    {"n", Tensor::from_vector(std::vector<int64_t>{s.n}, {})}};
  if (f.features) {
    SAGAN_CHECK(f.features->cols == s.dim, "save_stats: {}: features of width {} for {}-d statistics", path,
                f.features->cols, s.dim);
    t.emplace_back("features", f.features->to_tensor());
  }
  if (f.logits) t.emplace_back("logits", f.logits->to_tensor());
  io::Metadata meta = f.metadata;
  meta["format"] = "sagan-feature-stats-1";
  meta["feature_net"] = f.feature_net;
  io::save_safetensors(path, t, meta);
}

StatsFile load_stats(const std::string& path) {
  io::SafetensorsFile sf = io::load_safetensors(path);
  StatsFile f;
  auto net = sf.metadata.find("feature_net");
  SAGAN_CHECK(net != sf.metadata.end(), "load_stats: {}: no 'feature_net' metadata; not a statistics file", path);
  f.feature_net = net->second;
  f.metadata = sf.metadata;
  auto need = [&](const char* name) -> const Tensor& {
    SAGAN_CHECK(sf.contains(name), "load_stats: {}: no tensor '{}'; not a complete statistics file", path, name);
    return sf.at(name);
  };
  const Tensor& mu = need("mu");
  SAGAN_CHECK(mu.dim() == 1 && mu.size(0) > 0, "load_stats: {}: tensor 'mu' must be 1-d, got {}", path,
              shape_str(mu.shape()));
  const int64_t d = mu.size(0);
  const Tensor& sigma = need("sigma");
  SAGAN_CHECK(sigma.shape() == (Shape{d, d}), "load_stats: {}: tensor 'sigma' must be {}x{}, got {}", path, d, d,
              shape_str(sigma.shape()));
  const Tensor& n = need("n");
  SAGAN_CHECK(n.numel() == 1, "load_stats: {}: tensor 'n' must hold one count, got {}", path, shape_str(n.shape()));
  f.stats.dim = d;
  f.stats.n = static_cast<int64_t>(n.item());
  SAGAN_CHECK(f.stats.n >= 1, "load_stats: {}: tensor 'n' holds {}, not a count of images", path, f.stats.n);
  f.stats.mu = mu.to_vector();
  f.stats.sigma = sigma.to_vector();
  if (sf.contains("features")) {
    const Tensor& ft = sf.at("features");
    SAGAN_CHECK(ft.dim() == 2 && ft.size(0) == f.stats.n && ft.size(1) == d,
                "load_stats: {}: tensor 'features' must be ({}, {}) (n, mu's size), got {}", path, f.stats.n, d,
                shape_str(ft.shape()));
    f.features = FeatureMatrix::from_tensor(ft);
  }
  if (sf.contains("logits")) {
    const Tensor& lt = sf.at("logits");
    SAGAN_CHECK(lt.dim() == 2 && lt.size(0) == f.stats.n && lt.size(1) > 0,
                "load_stats: {}: tensor 'logits' must be ({}, classes) (n rows), got {}", path, f.stats.n,
                shape_str(lt.shape()));
    f.logits = FeatureMatrix::from_tensor(lt);
  }
  return f;
}

}  // namespace sagan::quality
