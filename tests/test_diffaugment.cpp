// DiffAugment (layers/diffaugment.h): forward and input gradients against
// the official PyTorch functions with the same injected draws
// (tests/golden/make_diffaugment_goldens.py), float64 finite-difference
// gradients with fixed draws, the Rng draws' ranges and reproducibility, and
// policy parsing.
#include <catch2/catch.hpp>
#include <set>

#include "sagan/core/ops.h"
#include "sagan/layers/diffaugment.h"
#include "tests/support/assertions.h"
#include "tests/support/golden.h"

using namespace sagan;
using namespace sagan::testing;
using nn::DiffAugmentParams;
using nn::DiffAugmentPolicy;

namespace {
const Json& da_case(const std::string& name) { return golden_case("diffaugment_goldens.json", name); }

DiffAugmentParams golden_params(const Json& c) {
  DiffAugmentParams p;
  auto reals = [&](const char* k, std::vector<double>& out) {
    if (c.contains(k)) out = c.at(k).get<std::vector<double>>();
  };
  auto ints = [&](const char* k, std::vector<int64_t>& out) {
    if (c.contains(k)) out = c.at(k).get<std::vector<int64_t>>();
  };
  reals("brightness", p.brightness);
  reals("saturation", p.saturation);
  reals("contrast", p.contrast);
  ints("shift_h", p.shift_h);
  ints("shift_w", p.shift_w);
  ints("cutout_h", p.cutout_h);
  ints("cutout_w", p.cutout_w);
  return p;
}
}  // namespace

TEST_CASE("diffaugment matches the official PyTorch DiffAugment with the same draws", "[diffaugment]") {
  for (const char* name : {"color", "translation", "cutout", "all", "reordered", "gray28"}) {
    INFO("case " << name);
    const Json& c = da_case(name);
    const DiffAugmentPolicy policy = DiffAugmentPolicy::parse(c.at("policy").get<std::string>());
    const DiffAugmentParams p = golden_params(c);
    Tensor x = golden_tensor(c, "x", DType::F64, true);
    Tensor y = nn::diffaugment(x, policy, p);
    REQUIRE(y.shape() == x.shape());
    REQUIRE_CLOSE(y, golden_values(c, "out"), 1e-12, 1e-12);
    Tensor gy = Tensor::from_vector(golden_values(c, "gy"), x.shape(), DType::F64);
    REQUIRE_CLOSE(input_grad(x, y, gy), golden_values(c, "gx"), 1e-12, 1e-12);

    // float32 (what training uses) agrees to float32 rounding.
    Tensor x32 = golden_tensor(c, "x", DType::F32);
    REQUIRE_CLOSE(nn::diffaugment(x32, policy, p), golden_values(c, "out"), 1e-5, 1e-5);
  }
}

TEST_CASE("diffaugment float64 gradients with fixed draws", "[diffaugment][gradcheck]") {
  Rng gen(17);
  // Odd, non-square images so a swapped axis shows; 2 channels (saturation acts).
  const DiffAugmentPolicy all = DiffAugmentPolicy::parse("color,translation,cutout");
  const DiffAugmentParams p = nn::draw_diffaugment(all, 3, 9, 7, gen);
  Tensor x = uniform64({3, 2, 9, 7}, -1, 1, gen);
  for (const char* policy : {"color", "translation", "cutout", "color,translation,cutout", "translation,color"}) {
    INFO("policy " << policy);
    const DiffAugmentPolicy pol = DiffAugmentPolicy::parse(policy);
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return nn::diffaugment(in[0], pol, p); }, x);
  }
}

TEST_CASE("diffaugment pieces: translation moves pixels in zeros, cutout zeroes its rectangle", "[diffaugment]") {
  // 16 x 12: radius 2 x 2 (int(1.5 + 0.5)), cutout 8 x 6.
  CHECK(nn::diffaugment_shift(16) == 2);
  CHECK(nn::diffaugment_shift(12) == 2);
  CHECK(nn::diffaugment_shift(28) == 4);
  CHECK(nn::diffaugment_shift(32) == 4);
  CHECK(nn::diffaugment_cutout_size(13) == 7);
  CHECK(nn::diffaugment_cutout_size(32) == 16);
  Tensor x = Tensor::arange(2 * 16 * 12, DType::F64).view({2, 1, 16, 12}) + 1.0;  // no zero pixels
  const std::vector<double> xs = x.to_vector();
  auto at = [](const std::vector<double>& v, int64_t b, int64_t i, int64_t j) {
    return v[static_cast<size_t>((b * 16 + i) * 12 + j)];
  };
  DiffAugmentParams p;
  p.shift_h = {2, 0};
  p.shift_w = {-1, 0};
  std::vector<double> t = nn::diffaugment(x, DiffAugmentPolicy::parse("translation"), p).to_vector();
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 12; ++j) {
      const bool inside = i + 2 < 16 && j - 1 >= 0;
      CHECK(at(t, 0, i, j) == (inside ? at(xs, 0, i + 2, j - 1) : 0.0));
      CHECK(at(t, 1, i, j) == at(xs, 1, i, j));  // zero shift: the identity
    }

  p.cutout_h = {8, 0};  // centred, and at the top edge (clamped: rows 0..3)
  p.cutout_w = {6, 11};
  std::vector<double> c = nn::diffaugment(x, DiffAugmentPolicy::parse("cutout"), p).to_vector();
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 12; ++j) {
      const bool cut0 = i >= 4 && i < 12 && j >= 3 && j < 9;
      const bool cut1 = i < 4 && j >= 8;
      CHECK(at(c, 0, i, j) == (cut0 ? 0.0 : at(xs, 0, i, j)));
      CHECK(at(c, 1, i, j) == (cut1 ? 0.0 : at(xs, 1, i, j)));
    }

  // Draws beyond the ranges are refused, naming the image.
  p.shift_h = {3, 0};
  REQUIRE_THROWS_WITH(nn::diffaugment(x, DiffAugmentPolicy::parse("translation"), p),
                      Catch::Contains("diffaugment") && Catch::Contains("image 0"));
  p.shift_h = {0};
  REQUIRE_THROWS_WITH(nn::diffaugment(x, DiffAugmentPolicy::parse("translation"), p),
                      Catch::Contains("1 translation (height) parameters for 2 images"));
}

TEST_CASE("diffaugment draws: per-sample, in range, reproducible from the Rng", "[diffaugment]") {
  const DiffAugmentPolicy all = DiffAugmentPolicy::parse("color,translation,cutout");
  Rng a(5), b(5);
  const int64_t B = 2000;
  DiffAugmentParams p = nn::draw_diffaugment(all, B, 32, 28, a);
  DiffAugmentParams q = nn::draw_diffaugment(all, B, 32, 28, b);
  CHECK(p.brightness == q.brightness);
  CHECK(p.shift_w == q.shift_w);
  CHECK(p.cutout_h == q.cutout_h);
  CHECK(a.position() == b.position());
  REQUIRE(p.brightness.size() == static_cast<size_t>(B));
  auto in = [](double v, double lo, double hi) { return v >= lo && v < hi; };
  double mean_b = 0;
  for (int64_t i = 0; i < B; ++i) {
    const auto k = static_cast<size_t>(i);
    CHECK(in(p.brightness[k], -0.5, 0.5));
    CHECK(in(p.saturation[k], 0.0, 2.0));
    CHECK(in(p.contrast[k], 0.5, 1.5));
    mean_b += p.brightness[k] / B;
  }
  CHECK(std::abs(mean_b) < 0.03);  // 5 sigma of U[-0.5, 0.5)'s mean over 2000
  // Every integer of each range occurs, and nothing outside it.
  auto values = [](const std::vector<int64_t>& v) { return std::set<int64_t>(v.begin(), v.end()); };
  CHECK(values(p.shift_h) == std::set<int64_t>{-4, -3, -2, -1, 0, 1, 2, 3, 4});  // 32: radius 4
  CHECK(values(p.shift_w) == std::set<int64_t>{-4, -3, -2, -1, 0, 1, 2, 3, 4});  // 28: int(3.5 + 0.5)
  std::set<int64_t> oh = values(p.cutout_h), ow = values(p.cutout_w);
  CHECK((oh.size() == 33 && *oh.begin() == 0 && *oh.rbegin() == 32));  // size 16, even: 0..32
  CHECK((ow.size() == 29 && *ow.begin() == 0 && *ow.rbegin() == 28));  // size 14, even: 0..28

  // The policy's order is the draw order; off policies draw nothing.
  Rng c(5);
  DiffAugmentParams t = nn::draw_diffaugment(DiffAugmentPolicy::parse("translation"), 4, 32, 32, c);
  CHECK(t.brightness.empty());
  CHECK(t.cutout_h.empty());
  CHECK(t.shift_h.size() == 4);
  Rng d(5);
  Tensor x = Tensor::zeros({4, 3, 32, 32});
  CHECK(nn::diffaugment(x, DiffAugmentPolicy{}, d).same(x));
  CHECK(d.position() == 0);
}

TEST_CASE("DiffAugmentPolicy parsing", "[diffaugment]") {
  using Op = DiffAugmentPolicy::Op;
  CHECK(DiffAugmentPolicy::parse("").ops.empty());
  CHECK(DiffAugmentPolicy::parse("none").str() == "none");
  DiffAugmentPolicy p = DiffAugmentPolicy::parse("cutout,color");
  CHECK(p.ops == std::vector<Op>{Op::cutout, Op::color});
  CHECK(p.str() == "cutout,color");
  CHECK(p.has(Op::color));
  CHECK(!p.has(Op::translation));
  REQUIRE_THROWS_WITH(DiffAugmentPolicy::parse("color,flip"),
                      Catch::Contains("--diffaug") && Catch::Contains("'flip'"));
  REQUIRE_THROWS_WITH(DiffAugmentPolicy::parse("color,color", "diffaug"), Catch::Contains("listed twice"));
}
