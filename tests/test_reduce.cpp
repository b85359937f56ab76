// Reductions: sum/mean over all and some dims (every subset of a 4-d odd
// shape, on contiguous and strided inputs) against a naive reference loop,
// sum_to_shape, softmax over every dim, float64 gradient checks and errors.
#include <catch2/catch.hpp>
#include <cmath>

#include "sagan/core/ops.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
// Sum of x over the dims in mask, by visiting every element: the reference
// the kernels are checked against. Returns the keepdim-shaped values.
std::vector<double> naive_sum(const Tensor& x, const std::vector<bool>& mask) {
  const Shape& s = x.shape();
  Shape os = s;
  for (size_t d = 0; d < s.size(); ++d)
    if (mask[d]) os[d] = 1;
  Shape ost = contiguous_strides(os), xst = contiguous_strides(s);
  std::vector<double> xv = x.to_vector(), out(static_cast<size_t>(numel_of(os)), 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t idx = (i / xst[d]) % s[d];
      if (!mask[d]) o += idx * ost[d];
    }
    out[static_cast<size_t>(o)] += xv[static_cast<size_t>(i)];
  }
  return out;
}

std::vector<int64_t> dims_of(const std::vector<bool>& mask) {
  std::vector<int64_t> d;
  for (size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) d.push_back(static_cast<int64_t>(i));
  return d;
}

// Every subset of dims, keepdim on and off, against naive_sum.
void check_all_subsets(const Tensor& x, double rtol) {
  const size_t nd = static_cast<size_t>(x.dim());
  for (unsigned bits = 0; bits < (1u << nd); ++bits) {
    std::vector<bool> mask(nd);
    for (size_t d = 0; d < nd; ++d) mask[d] = (bits >> d) & 1u;
    std::vector<int64_t> dims = dims_of(mask);
    std::vector<double> want = naive_sum(x, mask);
    for (bool keep : {true, false}) {
      INFO("shape " << shape_str(x.shape()) << " strides " << shape_str(x.strides()) << " dims ["
                    << fmt::format("{}", fmt::join(dims, ", ")) << "] keepdim " << keep);
      Tensor s = sum(x, dims, keep);
      Shape want_shape;
      for (size_t d = 0; d < nd; ++d)
        if (!mask[d])
          want_shape.push_back(x.size(static_cast<int64_t>(d)));
        else if (keep)
          want_shape.push_back(1);
      REQUIRE(s.shape() == want_shape);
      auto r = allclose(s, want, rtol, 1e-9);
      INFO(r.message);
      REQUIRE(r.ok);
    }
  }
}
}  // namespace

TEST_CASE("sum and mean match hand-computed values", "[reduce]") {
  // x[i,j,k] = 12i + 4j + k
  Tensor x = Tensor::arange(24, DType::F64).reshape({2, 3, 4});
  CHECK(sum(x).item() == 276.0);
  CHECK(sum(x).dim() == 0);
  CHECK(mean(x).item() == 11.5);
  // over (0,2): 2*4*4j + 4*12 + 2*6 = 32j + 60
  CHECK(sum(x, {0, 2}).to_vector() == std::vector<double>{60, 92, 124});
  CHECK(sum(x, {0, 2}, true).shape() == Shape{1, 3, 1});
  CHECK(sum(x, {-1}).to_vector() == std::vector<double>{6, 22, 38, 54, 70, 86});
  CHECK(mean(x, {1}).to_vector() == std::vector<double>{4, 5, 6, 7, 16, 17, 18, 19});
  CHECK(mean(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x, {}).to_vector() == x.to_vector());  // no dims: identity
  CHECK(sum(Tensor::scalar(3.0, DType::F64)).item() == 3.0);
  // Empty reductions give zeros; an empty mean has no value.
  Tensor e = Tensor::zeros({3, 0}, DType::F64);
  CHECK(sum(e, {1}).to_vector() == std::vector<double>{0, 0, 0});
  CHECK(sum(e).item() == 0.0);
  CHECK(sum(e, {0}).shape() == Shape{0});
  REQUIRE_THROWS_WITH(mean(e), Catch::Contains("mean") && Catch::Contains("[3, 0]"));
  REQUIRE_THROWS_WITH(mean(e, {1}), Catch::Contains("mean") && Catch::Contains("[3, 0]"));
}

TEST_CASE("sum over every subset of dims, contiguous and strided", "[reduce]") {
  Rng gen(21);
  Tensor x = Tensor::randn({2, 3, 5, 7}, gen, DType::F64);
  check_all_subsets(x, 1e-12);
  check_all_subsets(x.permute({2, 0, 3, 1}), 1e-12);
  check_all_subsets(x.slice(3, 1, 7, 2).slice(2, -4, 5), 1e-12);
  check_all_subsets(x.select(1, 1).unsqueeze(1).expand({2, 4, 5, 7}), 1e-12);
  // float32 through the same paths.
  check_all_subsets(Tensor::randn({3, 1, 5, 9}, gen).transpose(0, 3), 1e-5);
}

TEST_CASE("sum is accurate and correct on large inputs", "[reduce]") {
  // Large enough for the threaded paths; sizes not multiples of any vector width.
  Rng gen(22);
  Tensor x = Tensor::randn({9, 67, 5, 33}, gen);
  for (std::vector<int64_t> dims : {std::vector<int64_t>{0, 2, 3}, {1}, {0}, {3}, {1, 3}, {0, 1, 2, 3}}) {
    std::vector<bool> mask(4, false);
    for (int64_t d : dims) mask[static_cast<size_t>(d)] = true;
    INFO("dims [" << fmt::format("{}", fmt::join(dims, ", ")) << "]");
    auto r = allclose(sum(x, dims), naive_sum(x, mask), 1e-5, 1e-4);
    INFO(r.message);
    CHECK(r.ok);
  }
  // A float32 sum of 2^20 copies of 0.1f: a running float sum would drift by
  // ~1e-3 relative; the kernel must stay close to the exact value.
  Tensor c = Tensor::full({1 << 20}, 0.1);
  double exact = static_cast<double>(0.1f) * (1 << 20);
  CHECK(sum(c).item() == Approx(exact).epsilon(1e-6));
  CHECK(sum(c.reshape({1024, 1024}), {0}).to_vector()[5] == Approx(static_cast<double>(0.1f) * 1024).epsilon(1e-6));
}

TEST_CASE("sum and mean gradients, all and some dims, with and without keepdim", "[reduce][gradcheck]") {
  Rng gen(23);
  Tensor x = randn64({2, 3, 5, 7}, gen);
  // Square after the reduction so that each gradient element matters.
  REQUIRE_GRADCHECK([](const auto& in) { return square(sum(in[0])); }, x);
  REQUIRE_GRADCHECK([](const auto& in) { return square(mean(in[0])); }, x);
  for (bool keep : {false, true}) {
    INFO("keepdim " << keep);
    REQUIRE_GRADCHECK([keep](const auto& in) { return square(sum(in[0], {1}, keep)); }, x);
    REQUIRE_GRADCHECK([keep](const auto& in) { return square(sum(in[0], {0, 2, 3}, keep)); }, x);
    REQUIRE_GRADCHECK([keep](const auto& in) { return square(sum(in[0], {-1, 0}, keep)); }, x);
    REQUIRE_GRADCHECK([keep](const auto& in) { return square(mean(in[0], {2}, keep)); }, x);
    REQUIRE_GRADCHECK([keep](const auto& in) { return square(mean(in[0], {1, 3}, keep)); }, x);
  }
  // Through a strided input.
  REQUIRE_GRADCHECK([](const auto& in) { return square(sum(in[0].permute({3, 1, 0, 2}), {0, 3})); }, x);
}

TEST_CASE("sum_to_shape reverses broadcasting", "[reduce]") {
  Tensor x = Tensor::arange(24, DType::F64).reshape({2, 3, 4});
  CHECK(sum_to_shape(x, {2, 3, 4}).same(x));
  CHECK(sum_to_shape(x, {3, 1}).to_vector() == std::vector<double>{60, 92, 124});
  CHECK(sum_to_shape(x, {3, 1}).shape() == Shape{3, 1});
  CHECK(sum_to_shape(x, {}).item() == 276.0);
  CHECK(sum_to_shape(x, {1, 1, 4}).to_vector() == std::vector<double>{60, 66, 72, 78});
  CHECK(sum_to_shape(x, {2, 1, 1}).to_vector() == std::vector<double>{66, 210});
  CHECK(sum_to_shape(x, {4}).to_vector() == std::vector<double>{60, 66, 72, 78});
  // Size-1 dims of x that are also 1 in the target are kept as they are.
  Tensor y = Tensor::arange(6, DType::F64).reshape({2, 1, 3});
  CHECK(sum_to_shape(y, {1, 3}).to_vector() == std::vector<double>{3, 5, 7});
  REQUIRE_THROWS_WITH(sum_to_shape(x, {5}),
                      Catch::Contains("sum_to_shape") && Catch::Contains("[2, 3, 4]") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(sum_to_shape(x, {1, 2, 3, 4}), Catch::Contains("sum_to_shape"));
  Rng gen(24);
  Tensor g = randn64({2, 3, 5, 7}, gen);
  REQUIRE_GRADCHECK([](const auto& in) { return square(sum_to_shape(in[0], {3, 1, 7})); }, g);
  REQUIRE_GRADCHECK([](const auto& in) { return square(sum_to_shape(in[0], {})); }, g);
  REQUIRE_GRADCHECK([](const auto& in) { return square(sum_to_shape(in[0], {2, 1, 5, 1})); }, g);
}

TEST_CASE("softmax over every dim of a 3-d tensor", "[reduce][softmax]") {
  Rng gen(25);
  const Shape shape{3, 5, 7};
  Tensor x = Tensor::randn(shape, gen, DType::F64);
  std::vector<double> xv = x.to_vector();
  Shape st = contiguous_strides(shape);
  for (int64_t dim = 0; dim < 3; ++dim) {
    INFO("dim " << dim);
    // Reference: exp(x - max) / sum over the dim, by index arithmetic.
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      int64_t idx = (static_cast<int64_t>(i) / st[dim]) % shape[dim];
      int64_t base = static_cast<int64_t>(i) - idx * st[dim];
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < shape[dim]; ++k) m = std::max(m, xv[base + k * st[dim]]);
      for (int64_t k = 0; k < shape[dim]; ++k) s += std::exp(xv[base + k * st[dim]] - m);
      want[i] = std::exp(xv[i] - m) / s;
    }
    Tensor y = softmax(x, dim);
    CHECK(y.shape() == shape);
    auto r = allclose(y, want, 1e-12, 1e-15);
    INFO(r.message);
    CHECK(r.ok);
    CHECK(allclose(softmax(x, dim - 3), want, 1e-12, 1e-15).ok);  // negative dim
    auto ones = sum(y, {dim}).to_vector();
    for (double o : ones) CHECK(o == Approx(1.0).epsilon(1e-12));
    // Strided input.
    Tensor xt = x.transpose(0, 2).contiguous().transpose(0, 2);
    CHECK(allclose(softmax(xt, dim), want, 1e-12, 1e-15).ok);
  }
  // Large logits do not overflow.
  Tensor big = Tensor::from_vector(std::vector<double>{1000, 1001, 999}, {3}, DType::F64);
  std::vector<double> p = softmax(big, 0).to_vector();
  double z = std::exp(-1.0) + 1 + std::exp(-2.0);
  CHECK(p[0] == Approx(std::exp(-1.0) / z));
  CHECK(p[1] == Approx(1.0 / z));
  REQUIRE_THROWS_WITH(softmax(x, 3), Catch::Contains("softmax") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2}, DType::I64), 0),
                      Catch::Contains("softmax") && Catch::Contains("int64"));
}

TEST_CASE("softmax gradients over every dim", "[reduce][softmax][gradcheck]") {
  Rng gen(26);
  Tensor x = randn64({3, 5, 7}, gen);
  for (int64_t dim = 0; dim < 3; ++dim) {
    INFO("dim " << dim);
    REQUIRE_GRADCHECK([dim](const auto& in) { return softmax(in[0], dim); }, x);
  }
  REQUIRE_GRADCHECK([](const auto& in) { return softmax(in[0].permute({2, 0, 1}), -2); }, x);
}

TEST_CASE("softmax and log_softmax subtract the row maximum wherever it lies", "[reduce][softmax][log_softmax]") {
  // One logit far above the rest (exp of it overflows: past 709 in float64,
  // 88 in float32), put at every position of the row: a row maximum that
  // misses a position gives inf / inf = NaN there. The large-logit cases
  // elsewhere (random, or a maximum only 1 above the next) do not see that.
  const int64_t n = 5;
  for (DType dt : {DType::F64, DType::F32}) {
    const double big = dt == DType::F64 ? 1000.0 : 100.0;
    for (int64_t at = 0; at < n; ++at) {
      INFO(dtype_name(dt) << ", maximum at " << at);
      std::vector<double> v(static_cast<size_t>(n), 0.5);
      v[static_cast<size_t>(at)] = big;
      Tensor x = Tensor::from_vector(v, {1, n}, dt);
      const std::vector<double> p = softmax(x, 1).to_vector(), lp = log_softmax(x, -1).to_vector();
      for (int64_t i = 0; i < n; ++i) {
        INFO("element " << i);
        const size_t k = static_cast<size_t>(i);
        CHECK(p[k] == Approx(i == at ? 1.0 : 0.0).margin(1e-30));
        CHECK(lp[k] == Approx(i == at ? 0.0 : 0.5 - big).margin(1e-12));
      }
    }
  }
}

TEST_CASE("reduction errors name the op and the shapes", "[reduce][errors]") {
  Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(sum(x, {2}), Catch::Contains("sum") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(sum(x, {1, -1}), Catch::Contains("sum") && Catch::Contains("twice"));
  REQUIRE_THROWS_WITH(mean(x, {-3}), Catch::Contains("mean") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(sum(Tensor::zeros({2, 3}, DType::I64)),
                      Catch::Contains("sum") && Catch::Contains("int64") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(sum(Tensor()), Catch::Contains("sum") && Catch::Contains("undefined"));
}

TEST_CASE("a 0-d tensor takes dim 0 or -1 in sum, mean, softmax and log_softmax", "[reduce][softmax]") {
  // As in PyTorch: the scalar is treated as 1-d, and reducing it keeps it.
  Tensor s = Tensor::scalar(3.0, DType::F64);
  CHECK(sum(s, {0}).dim() == 0);
  CHECK(sum(s, {0}).item() == 3.0);
  CHECK(sum(s, {-1}, true).dim() == 0);
  CHECK(mean(s, {0}).item() == 3.0);
  CHECK(softmax(s, 0).dim() == 0);
  CHECK(softmax(s, -1).item() == 1.0);
  CHECK(log_softmax(s, 0).item() == 0.0);
  REQUIRE_THROWS_WITH(sum(s, {1}), Catch::Contains("sum") && Catch::Contains("0-d"));
  REQUIRE_THROWS_WITH(softmax(s, -2), Catch::Contains("softmax") && Catch::Contains("0-d"));
  REQUIRE_THROWS_WITH(mean(s, {0, -1}), Catch::Contains("mean") && Catch::Contains("twice"));
  Rng gen(27);
  Tensor x = randn64({}, gen);
  REQUIRE_GRADCHECK([](const auto& in) { return square(sum(in[0], {0})); }, x);
  REQUIRE_GRADCHECK([](const auto& in) { return mul(softmax(in[0], 0), in[0]); }, x);
  REQUIRE_GRADCHECK([](const auto& in) { return mul(log_softmax(in[0], -1), in[0]); }, x);
}
