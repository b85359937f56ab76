// Tensors and views: every view shares storage (writes through a view are
// read through the base), copies happen only where a view is impossible,
// float64 gradient checks through each view op, broadcasting edge cases,
// conversions, printing and error messages.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "sagan/core/ops.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
// 0, 1, ..., n-1 as float64 in the given shape.
Tensor iota64(const Shape& s) { return Tensor::arange(numel_of(s), DType::F64).reshape(s); }

std::vector<double> range(int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  return v;
}

bool shares(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }
}  // namespace

TEST_CASE("factories give contiguous tensors with the requested contents", "[tensor]") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.strides() == Shape{3, 1});
  CHECK(z.dtype() == DType::F32);
  CHECK(z.is_contiguous());
  CHECK(z.to_vector() == std::vector<double>(6, 0.0));
  CHECK(Tensor::full({4}, 2.5, DType::F64).to_vector() == std::vector<double>(4, 2.5));
  CHECK(Tensor::ones({3}, DType::I64).to_int_vector() == std::vector<int64_t>{1, 1, 1});
  Tensor s = Tensor::scalar(3.0);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.0);
  CHECK(Tensor::arange(5).to_vector() == range(5));
  CHECK(Tensor::arange(0).numel() == 0);
  Tensor e = Tensor::empty({0, 3});
  CHECK(e.numel() == 0);
  CHECK(e.to_vector().empty());
  CHECK(Tensor::from_vector(std::vector<int64_t>{-1, 5}, {2}).to_int_vector() == std::vector<int64_t>{-1, 5});
}

TEST_CASE("a shape whose sizes multiply past 2^63 bytes is refused, even with a zero size", "[tensor]") {
  // Strides multiply the sizes after the first: [0, 2^40, 2^40, 2^40] has no
  // elements but its first stride would be 2^120 (signed overflow; found by
  // review of what the safetensors harness can reach).
  const int64_t big = int64_t(1) << 40;
  REQUIRE_THROWS_WITH(Tensor::empty({0, big, big, big}),
                      Catch::Contains("empty: shape [0, 1099511627776") && Catch::Contains("too large"));
  REQUIRE_THROWS_WITH(Tensor::empty({big, big}), Catch::Contains("too large"));
  REQUIRE_THROWS_WITH(Tensor::empty({INT64_MAX / 4}, DType::F64), Catch::Contains("too large"));
  Tensor ok = Tensor::empty({0, INT64_MAX / 8}, DType::F64);  // fits: strides {2^60 - 1, 1}
  CHECK(ok.numel() == 0);
  CHECK(ok.strides() == Shape{INT64_MAX / 8, 1});
}

TEST_CASE("reshape views when it can and copies when it cannot", "[tensor][views]") {
  Tensor x = iota64({2, 3, 4});
  Tensor y = x.reshape({6, 4});
  CHECK(shares(x, y));
  CHECK(y.strides() == Shape{4, 1});
  Tensor z = x.reshape({4, -1});
  CHECK(z.shape() == Shape{4, 6});
  CHECK(shares(x, z));
  // Write through the view, read through the base.
  y.select(0, 5).fill_(-1.0);
  CHECK(x.select(0, 1).select(0, 2).to_vector() == std::vector<double>(4, -1.0));

  // A transposed tensor can still view when the merged dims stay adjacent:
  // (4,3,2)->(4,6) merges the last two dims of a permuted (2,3,4) tensor only
  // if they are contiguous with each other.
  Tensor p = iota64({2, 3, 4}).permute({2, 0, 1});  // (4,2,3), strides (1,12,4)
  Tensor pv = p.reshape({4, 6});                    // dims 1,2 merge: 12 == 3*4
  CHECK(shares(p, pv));
  CHECK(pv.strides() == Shape{1, 4});
  Tensor pc = p.reshape({24});  // cannot view: copies, in p's logical order
  CHECK_FALSE(shares(p, pc));
  std::vector<double> want;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(i * 12 + j * 4 + k);
  CHECK(pc.to_vector() == want);
  REQUIRE_THROWS_WITH(p.view({24}),
                      Catch::Contains("view") && Catch::Contains("[4, 2, 3]") && Catch::Contains("reshape"));

  // Size-1 dims with arbitrary strides never block a view.
  Tensor col = iota64({5, 4}).slice(1, 2, 3);  // (5,1), strides (4,1)
  Tensor flat = col.reshape({5});
  CHECK(shares(col, flat));
  CHECK(flat.to_vector() == std::vector<double>{2, 6, 10, 14, 18});
  // Zero-size tensors reshape freely.
  CHECK(Tensor::empty({0, 4}).reshape({2, 0, 3}).shape() == Shape{2, 0, 3});
  // A 0-d tensor and back.
  Tensor s = Tensor::scalar(4.0, DType::F64);
  CHECK(s.reshape({1, 1}).shape() == Shape{1, 1});
  CHECK(s.reshape({1, 1}).reshape({}).item() == 4.0);
}

TEST_CASE("permute and transpose are views with permuted strides", "[tensor][views]") {
  Tensor x = iota64({2, 3, 4});
  Tensor p = x.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.strides() == Shape{4, 1, 12});
  CHECK(shares(x, p));
  CHECK_FALSE(p.is_contiguous());
  // p[i,j,k] = x[k,i,j]
  std::vector<double> pv = p.to_vector();
  CHECK(pv[0 * 8 + 1 * 2 + 1] == 12 + 0 * 4 + 1);
  CHECK(pv[2 * 8 + 3 * 2 + 0] == 0 + 2 * 4 + 3);
  Tensor t = x.transpose(0, -1);  // (4,3,2)
  CHECK(t.shape() == Shape{4, 3, 2});
  t.select(0, 3).select(0, 2).select(0, 1).fill_(100.0);  // x[1,2,3]
  CHECK(x.to_vector()[23] == 100.0);
  CHECK(x.permute({-3, -2, -1}).strides() == x.strides());
  Tensor m = iota64({3, 5});
  CHECK(m.t().shape() == Shape{5, 3});
  CHECK(m.t().t().to_vector() == m.to_vector());
}

TEST_CASE("slice with steps, negative and out-of-range bounds", "[tensor][views]") {
  Tensor x = iota64({10});
  Tensor a = x.slice(0, -7, -1, 3);  // 3, 6
  CHECK(a.to_vector() == std::vector<double>{3, 6});
  CHECK(a.strides() == Shape{3});
  CHECK(a.offset() == 3);
  CHECK(x.slice(0, -100, 100, 4).to_vector() == std::vector<double>{0, 4, 8});
  CHECK(x.slice(0, 7, 3).numel() == 0);  // empty, not negative
  CHECK(x.slice(0, 8, 100).to_vector() == std::vector<double>{8, 9});
  CHECK(x.narrow(0, 2, 3).to_vector() == std::vector<double>{2, 3, 4});
  // A step past the end takes the first element (no overflow near INT64_MAX).
  CHECK(x.slice(0, 2, 10, INT64_MAX).to_vector() == std::vector<double>{2});
  CHECK(x.slice(0, 0, 10, 10).to_vector() == std::vector<double>{0});
  a.fill_(-5.0);
  std::vector<double> want = range(10);
  want[3] = want[6] = -5.0;
  CHECK(x.to_vector() == want);

  Tensor m = iota64({3, 7});
  Tensor c = m.slice(1, 1, 7, 2);  // columns 1,3,5
  CHECK(c.shape() == Shape{3, 3});
  CHECK(c.strides() == Shape{7, 2});
  CHECK(c.offset() == 1);
  CHECK(c.to_vector() == std::vector<double>{1, 3, 5, 8, 10, 12, 15, 17, 19});
  // A slice of a slice composes offsets and strides.
  Tensor cc = c.slice(0, 1, 3).slice(1, -2, 3);  // rows 1..2, columns 3,5
  CHECK(cc.to_vector() == std::vector<double>{10, 12, 17, 19});
  cc.fill_(0.0);
  CHECK(m.to_vector()[10] == 0.0);
  CHECK(m.to_vector()[19] == 0.0);
  CHECK(m.to_vector()[8] == 8.0);
}

TEST_CASE("select drops a dim and shares storage", "[tensor][views]") {
  Tensor x = iota64({2, 3, 4});
  Tensor s = x.select(1, -1);  // x[:, 2, :]
  CHECK(s.shape() == Shape{2, 4});
  CHECK(s.to_vector() == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});
  CHECK(shares(x, s));
  s.select(1, 0).fill_(7.0);
  CHECK(x.to_vector()[8] == 7.0);
  CHECK(x.to_vector()[20] == 7.0);
  Tensor v = iota64({4});
  CHECK(v.select(0, 2).dim() == 0);
  CHECK(v.select(0, -4).item() == 0.0);
}

TEST_CASE("expand broadcasts with zero strides", "[tensor][views]") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3, 1}, DType::F64);
  Tensor e = x.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(shares(x, e));
  CHECK_FALSE(e.is_contiguous());
  // Writes to the base show up in every broadcast copy.
  x.select(0, 1).fill_(20.0);
  std::vector<double> ev = e.to_vector();
  CHECK(ev.size() == 24);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 4; ++j) CHECK(ev[static_cast<size_t>(b * 12 + 4 + j)] == 20.0);
  // -1 keeps a size; same shape is a no-op.
  CHECK(x.expand({-1, 5}).shape() == Shape{3, 5});
  CHECK(x.expand({3, 1}).same(x));
  // Zero-size broadcast.
  CHECK(x.expand({0, 3, 2}).numel() == 0);
  // contiguous() of an expanded tensor materialises the repeats.
  Tensor c = Tensor::from_vector(std::vector<double>{1, 2}, {2}, DType::F64).expand({3, 2}).contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.to_vector() == std::vector<double>{1, 2, 1, 2, 1, 2});
  REQUIRE_THROWS_WITH(x.expand({3, 2, 4}).numel(),
                      Catch::Contains("expand") && Catch::Contains("[3, 1]") && Catch::Contains("[3, 2, 4]"));
  REQUIRE_THROWS_WITH(x.expand({2}), Catch::Contains("expand"));
  REQUIRE_THROWS_WITH(x.expand({-1, 3, 4}), Catch::Contains("expand"));
}

TEST_CASE("unsqueeze, squeeze and flatten", "[tensor][views]") {
  Tensor x = iota64({2, 3, 4, 5});
  CHECK(x.unsqueeze(0).shape() == Shape{1, 2, 3, 4, 5});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 5, 1});
  CHECK(x.unsqueeze(2).shape() == Shape{2, 3, 1, 4, 5});
  CHECK(shares(x, x.unsqueeze(2)));
  CHECK(x.unsqueeze(2).squeeze(2).shape() == x.shape());
  // unsqueeze of a non-contiguous tensor is still a view.
  Tensor p = x.permute({3, 1, 0, 2});
  Tensor pu = p.unsqueeze(1);
  CHECK(shares(x, pu));
  CHECK(pu.to_vector() == p.to_vector());
  CHECK(x.flatten().shape() == Shape{120});
  CHECK(x.flatten(1, 2).shape() == Shape{2, 12, 5});
  CHECK(x.flatten(-2).shape() == Shape{2, 3, 20});
  CHECK(x.flatten(2, 2).shape() == x.shape());
  CHECK(shares(x, x.flatten(1, 2)));
  Tensor pf = p.flatten(0, 1);  // not viewable: copies
  CHECK_FALSE(shares(x, pf));
  CHECK(pf.to_vector() == p.to_vector());
  CHECK(Tensor::scalar(2.0).flatten().shape() == Shape{1});
  REQUIRE_THROWS_WITH(x.squeeze(1), Catch::Contains("squeeze") && Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(x.flatten(2, 1), Catch::Contains("flatten") && Catch::Contains("[2, 3, 4, 5]"));
  REQUIRE_THROWS_WITH(x.unsqueeze(5), Catch::Contains("unsqueeze") && Catch::Contains("out of range"));
}

TEST_CASE("contiguous, clone and dtype conversion", "[tensor]") {
  Tensor x = iota64({3, 4});
  CHECK(x.contiguous().same(x));
  Tensor t = x.t();
  Tensor tc = t.contiguous();
  CHECK(tc.is_contiguous());
  CHECK_FALSE(shares(t, tc));
  CHECK(tc.strides() == Shape{3, 1});
  CHECK(tc.to_vector() == t.to_vector());
  // An offset but contiguous slice needs no copy.
  Tensor rows = x.slice(0, 1, 3);
  CHECK(rows.is_contiguous());
  CHECK(rows.contiguous().same(rows));

  Tensor cl = t.clone();
  CHECK_FALSE(shares(cl, t));
  CHECK(cl.is_contiguous());
  cl.fill_(0.0);
  CHECK(x.to_vector() == range(12));

  Tensor f = Tensor::from_vector(std::vector<double>{2.7, -2.7, 0.5, 1e10}, {4}, DType::F64);
  CHECK(f.to(DType::F64).same(f));
  CHECK(f.to(DType::I64).to_int_vector() == std::vector<int64_t>{2, -2, 0, 10000000000});  // truncates
  // What C++ leaves undefined is defined, as on the GPU (kernels/convert_value.h):
  // NaN -> 0, beyond int64 -> its nearest end, 2^63 itself beyond, -2^63 not.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  for (DType t : {DType::F32, DType::F64}) {
    const Tensor edge =
        Tensor::from_vector(std::vector<double>{NAN, 1e30, -1e30, INFINITY, -INFINITY, 0x1p63, -0x1p63}, {7}, t);
    CHECK(edge.to(DType::I64).to_int_vector() == std::vector<int64_t>{0, kMax, kMin, kMax, kMin, kMax, kMin});
    Tensor filled = Tensor::zeros({2}, DType::I64);
    filled.fill_(NAN);
    CHECK(filled.to_int_vector() == std::vector<int64_t>{0, 0});
    filled.fill_(-1e300);
    CHECK(filled.to_int_vector() == std::vector<int64_t>{kMin, kMin});
  }
  std::vector<float> f32 = f.to(DType::F32).to_float_vector();
  CHECK(f32[0] == 2.7f);
  CHECK(f32[3] == 1e10f);
  CHECK(Tensor::from_vector(std::vector<int64_t>{3, -4}, {2}).to(DType::F64).to_vector() == std::vector<double>{3, -4});
  // Converting a strided view keeps the logical order.
  CHECK(t.to(DType::F32).to_vector() == t.to_vector());
}

TEST_CASE("contiguous copies of permuted tensors match index arithmetic", "[tensor]") {
  // Sizes large enough for the tiled transpose path, not multiples of its tile.
  Tensor x = iota64({3, 37, 53});
  std::vector<double> xv = x.to_vector();
  auto at = [&](int64_t i, int64_t j, int64_t k) { return xv[static_cast<size_t>((i * 37 + j) * 53 + k)]; };
  Tensor t = x.transpose(1, 2).contiguous();  // (3,53,37)
  std::vector<double> tv = t.to_vector(), want;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 53; ++k)
      for (int64_t j = 0; j < 37; ++j) want.push_back(at(i, j, k));
  CHECK(tv == want);
  // (53,3,37): the source's unit-stride dim is the outermost one.
  Tensor p = x.permute({2, 0, 1});
  Tensor pc = Tensor::empty(p.shape(), DType::F32);
  pc.copy_(p);  // converting on the way
  want.clear();
  for (int64_t k = 0; k < 53; ++k)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 37; ++j) want.push_back(at(i, j, k));
  CHECK(pc.to_vector() == want);
  // A strided destination and a strided source.
  Tensor big = Tensor::zeros({40, 60}, DType::F64);
  big.slice(1, 1, 60, 2).copy_(iota64({30, 40}).t().slice(0, 0, 40));
  std::vector<double> bv = big.to_vector();
  CHECK(bv[0] == 0.0);
  CHECK(bv[1] == 0.0);   // (0,1) <- iota[0][0]
  CHECK(bv[3] == 40.0);  // (0,3) <- iota[1][0]
  CHECK(bv[static_cast<size_t>(39 * 60 + 59)] == 29 * 40 + 39);
}

TEST_CASE("copy_ broadcasts, converts and handles overlapping views", "[tensor]") {
  Tensor dst = Tensor::zeros({2, 3}, DType::F64);
  dst.copy_(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}));
  CHECK(dst.to_vector() == std::vector<double>{1, 2, 3, 1, 2, 3});
  dst.t().copy_(iota64({3, 2}));
  CHECK(dst.to_vector() == std::vector<double>{0, 2, 4, 1, 3, 5});
  // Source and destination overlap: the result must be as if src were read
  // first (here: an in-place transpose of a square matrix).
  Tensor sq = iota64({3, 3});
  sq.copy_(sq.t());
  CHECK(sq.to_vector() == std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8});
  Tensor v = iota64({6});
  v.slice(0, 1, 6).copy_(v.slice(0, 0, 5));  // shift right by one
  CHECK(v.to_vector() == std::vector<double>{0, 0, 1, 2, 3, 4});
  REQUIRE_THROWS_WITH(dst.copy_(Tensor::zeros({4})),
                      Catch::Contains("copy_") && Catch::Contains("[4]") && Catch::Contains("[2, 3]"));
}

TEST_CASE("broadcasting edge cases: scalars, size-1 dims, rank mismatch, zero-size", "[tensor][broadcast]") {
  CHECK(broadcast_shapes({}, {2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes({1}, {}, "t") == Shape{1});
  CHECK(broadcast_shapes({3, 1, 5}, {4, 1}, "t") == Shape{3, 4, 5});
  CHECK(broadcast_shapes({0, 1}, {1, 3}, "t") == Shape{0, 3});
  CHECK(broadcast_shapes({0}, {1}, "t") == Shape{0});
  REQUIRE_THROWS_WITH(broadcast_shapes({0}, {2}, "myop"), Catch::Contains("myop") && Catch::Contains("[0]"));

  Tensor s = Tensor::scalar(10.0, DType::F64);
  Tensor m = iota64({2, 3});
  CHECK(add(s, m).shape() == Shape{2, 3});
  CHECK(add(m, s).to_vector() == std::vector<double>{10, 11, 12, 13, 14, 15});
  CHECK(add(s, s).dim() == 0);
  Tensor col = Tensor::from_vector(std::vector<double>{100, 200}, {2, 1}, DType::F64);
  Tensor row = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::F64);
  CHECK(add(col, row).to_vector() == std::vector<double>{101, 102, 103, 201, 202, 203});
  Tensor z = Tensor::zeros({0, 3}, DType::F64);
  CHECK(mul(z, row).shape() == Shape{0, 3});
  CHECK(add(Tensor::zeros({4, 0}, DType::F64), Tensor::scalar(1.0, DType::F64)).shape() == Shape{4, 0});

  // Gradients flow back to each operand's own shape, including zero-size.
  Tensor a = Tensor::ones({0, 3}, DType::F64).set_requires_grad();
  Tensor b = Tensor::ones({3}, DType::F64).set_requires_grad();
  sum(mul(a, b)).backward();
  CHECK(a.grad().shape() == Shape{0, 3});
  CHECK(b.grad().to_vector() == std::vector<double>{0, 0, 0});
  Tensor sc = Tensor::scalar(2.0, DType::F64).set_requires_grad();
  Tensor mm = iota64({2, 3}).set_requires_grad();
  sum(mul(sc, mm)).backward();
  CHECK(sc.grad().dim() == 0);
  CHECK(sc.grad().item() == 15.0);
  CHECK(mm.grad().to_vector() == std::vector<double>(6, 2.0));
}

TEST_CASE("broadcasting gradients for scalars, size-1 dims and rank mismatch", "[tensor][broadcast][gradcheck]") {
  Rng gen(11);
  Tensor s = randn64({}, gen), m = randn64({2, 3, 5}, gen), one = randn64({1, 1}, gen), r = randn64({3, 1}, gen);
  REQUIRE_GRADCHECK([](const auto& in) { return mul(in[0], in[1]); }, s, m);
  REQUIRE_GRADCHECK([](const auto& in) { return mul(in[0], in[1]); }, one, m);
  REQUIRE_GRADCHECK([](const auto& in) { return add(in[1], in[0]) * in[0]; }, r, m);
}

TEST_CASE("gradients flow through every view op", "[tensor][views][gradcheck]") {
  Rng gen(3);
  Tensor x = randn64({2, 3, 5, 7}, gen);
  // Each f ends in a non-linear op so gradients depend on the routing.
  auto check = [&](const Fn& f) {
    auto r = gradcheck([&](const auto& in) { return mul(f(in), f(in)); }, {x});
    INFO(r.message);
    REQUIRE(r.ok);
  };
  SECTION("reshape (view and copy)") {
    check([](const auto& in) { return in[0].reshape({6, -1}); });
    check([](const auto& in) { return in[0].permute({3, 1, 2, 0}).reshape({7, 30}); });
  }
  SECTION("view") {
    check([](const auto& in) { return in[0].view({2, 105}); });
  }
  SECTION("permute") {
    check([](const auto& in) { return in[0].permute({2, 0, 3, 1}); });
  }
  SECTION("transpose") {
    check([](const auto& in) { return in[0].transpose(1, -1); });
  }
  SECTION("slice with a step and negative bounds") {
    check([](const auto& in) { return in[0].slice(3, -6, -1, 2); });
    check([](const auto& in) { return in[0].slice(2, 1, 100, 3).slice(1, -2, 3); });
  }
  SECTION("select") {
    check([](const auto& in) { return in[0].select(2, -2); });
  }
  SECTION("expand") {
    check([](const auto& in) { return in[0].slice(1, 0, 1).expand({4, 2, 3, 5, 7}); });
  }
  SECTION("unsqueeze and squeeze") {
    check([](const auto& in) { return in[0].unsqueeze(2); });
    check([](const auto& in) { return in[0].slice(2, 1, 2).squeeze(2); });
  }
  SECTION("flatten") {
    check([](const auto& in) { return in[0].flatten(1, 2); });
    check([](const auto& in) { return in[0].transpose(0, 3).flatten(); });
  }
  SECTION("contiguous and clone") {
    check([](const auto& in) { return in[0].permute({1, 3, 0, 2}).contiguous(); });
    check([](const auto& in) { return in[0].slice(3, 0, 7, 3).clone(); });
  }
  SECTION("a chain of views on a non-contiguous input") {
    check([](const auto& in) {
      return in[0].transpose(0, 2).slice(0, 1, 5, 2).select(3, 4).unsqueeze(0).expand({3, 2, 3, 2}).flatten(1);
    });
  }
}

TEST_CASE("dtype conversion is differentiable between float types", "[tensor][autograd]") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::F64).set_requires_grad();
  Tensor y = x.to(DType::F32);
  REQUIRE(y.requires_grad());
  sum(mul(y, y)).backward();
  CHECK(x.grad().dtype() == DType::F64);
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
  CHECK_FALSE(x.to(DType::I64).requires_grad());
}

TEST_CASE("str() prints readable values and truncates big tensors", "[tensor][print]") {
  Tensor m = Tensor::from_vector(std::vector<float>{0, 1, 2.5f, -3, 4, 5}, {2, 3});
  CHECK(m.str() == "[[0, 1, 2.5],\n [-3, 4, 5]] (float32, cpu, shape [2, 3])");
  CHECK(Tensor::scalar(1.5, DType::F64).str() == "1.5 (float64, cpu, shape [])");
  CHECK(Tensor::from_vector(std::vector<int64_t>{7, -8}, {2}).str() == "[7, -8] (int64, cpu, shape [2])");
  CHECK(Tensor::empty({0}).str() == "[] (float32, cpu, shape [0])");
  CHECK(Tensor().str() == "Tensor(undefined)");
  Tensor g = Tensor::zeros({2}).set_requires_grad();
  CHECK(g.str() == "[0, 0] (float32, cpu, shape [2], requires_grad)");
  // A strided view prints its logical order.
  CHECK(m.t().str() == "[[0, -3],\n [1, 4],\n [2.5, 5]] (float32, cpu, shape [3, 2])");

  Tensor v = Tensor::arange(1000);
  CHECK(v.str() == "[0, 1, 2, ..., 997, 998, 999] (float32, cpu, shape [1000])");
  Tensor big = Tensor::arange(1000 * 1000).reshape({1000, 1000});
  std::string s = big.str();
  CHECK(s.size() < 500);
  CHECK_THAT(s, Catch::StartsWith("[[0, 1, 2, ..., 997, 998, 999],\n [1000, 1001, 1002, ..., 1997, 1998, 1999],"));
  CHECK_THAT(s, Catch::Contains("\n ...,\n [997000, "));
  CHECK_THAT(s, Catch::EndsWith("999997, 999998, 999999]] (float32, cpu, shape [1000, 1000])"));
  std::ostringstream os;
  os << Tensor::scalar(2.0);
  CHECK(os.str() == "2 (float32, cpu, shape [])");
}

TEST_CASE("tensor errors name the op and the shapes", "[tensor][errors]") {
  Tensor x = iota64({2, 3});
  REQUIRE_THROWS_WITH(x.reshape({4, 2}),
                      Catch::Contains("reshape") && Catch::Contains("[4, 2]") && Catch::Contains("6 elements"));
  REQUIRE_THROWS_WITH(x.reshape({-1, -1}), Catch::Contains("reshape") && Catch::Contains("-1"));
  REQUIRE_THROWS_WITH(x.view({5, -1}), Catch::Contains("view") && Catch::Contains("[5, -1]"));
  REQUIRE_THROWS_WITH(x.permute({0}), Catch::Contains("permute") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(x.permute({1, 1}), Catch::Contains("permute") && Catch::Contains("repeated"));
  REQUIRE_THROWS_WITH(x.transpose(0, 2), Catch::Contains("transpose") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(x.slice(1, 0, 2, 0), Catch::Contains("slice") && Catch::Contains("step"));
  REQUIRE_THROWS_WITH(x.slice(2, 0, 1), Catch::Contains("slice") && Catch::Contains("dim 2"));
  REQUIRE_THROWS_WITH(x.select(1, 3),
                      Catch::Contains("select") && Catch::Contains("index 3") && Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(x.item(), Catch::Contains("item") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(Tensor::from_vector(std::vector<double>{1, 2, 3}, {2, 2}),
                      Catch::Contains("from_vector") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(Tensor::empty({2, -3}), Catch::Contains("empty") && Catch::Contains("[2, -3]"));
  REQUIRE_THROWS_WITH(Tensor::arange(-2), Catch::Contains("arange") && Catch::Contains("-2"));
  REQUIRE_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(x.data<float>(), Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(x.size(2), Catch::Contains("size") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(Device::parse("gpu"), Catch::Contains("gpu"));
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  // An index past int is a sagan::Error naming the string (was std::stoi's).
  REQUIRE_THROWS_AS(Device::parse("cuda:99999999999"), Error);
  REQUIRE_THROWS_WITH(Device::parse("cuda:99999999999"), Catch::Contains("'cuda:99999999999' is not a device"));
  // Device{CPU, 1} (an aggregate a program may fill with a rank or a GPU
  // index) is refused when used, naming it, not at the first kernel as
  // "on cpu, the kernel runs on cpu".
  const Device cpu1{DeviceType::CPU, 1};
  CHECK(device_name(cpu1) == "cpu:1");
  REQUIRE_THROWS_WITH(Tensor::ones({2}, DType::F32, cpu1), Catch::Contains("device cpu:1: there is one CPU device"));
  REQUIRE_THROWS_WITH(Tensor::ones({2}).to(cpu1), Catch::Contains("device cpu:1"));
}

TEST_CASE("random factories refuse a negative size with a sagan::Error naming the factory", "[tensor]") {
  Rng gen(1);
  REQUIRE_THROWS_AS(Tensor::randn({-3}, gen), Error);
  REQUIRE_THROWS_WITH(Tensor::randn({2, -1}, gen), Catch::Contains("randn: negative size in shape"));
  REQUIRE_THROWS_WITH(Tensor::rand({-1}, gen), Catch::Contains("rand: negative size"));
  REQUIRE_THROWS_WITH(Tensor::randint({2, -1}, 3, gen), Catch::Contains("randint: negative size"));
  REQUIRE_THROWS_WITH(Tensor::randn({int64_t{1} << 40, int64_t{1} << 40}, gen), Catch::Contains("too large"));
  CHECK(Tensor::randn({0, 5}, gen).numel() == 0);
  // Integer draws come from randint: randn and rand rounded to int64 were mostly 0.
  REQUIRE_THROWS_WITH(Tensor::randn({2}, gen, DType::I64), Catch::Contains("randn: dtype must be float32 or float64"));
  REQUIRE_THROWS_WITH(Tensor::rand({2}, gen, DType::I64), Catch::Contains("rand: dtype must be float32 or float64"));
}

TEST_CASE("dim and shape errors show the tensor's shape", "[tensor]") {
  const Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(x.permute({0, 2}), Catch::Contains("permute: dim 2 out of range for a tensor of shape [2, 3] (2-d)"));
  REQUIRE_THROWS_WITH(x.squeeze(-3), Catch::Contains("squeeze: dim -3 out of range for a tensor of shape [2, 3]"));
  REQUIRE_THROWS_WITH(x.select(2, 0), Catch::Contains("select: dim 2 out of range for a tensor of shape [2, 3]"));
  REQUIRE_THROWS_WITH(x.unsqueeze(3), Catch::Contains("unsqueeze: dim 3 out of range for a tensor of shape [2, 3] (-3 to 2)"));
  REQUIRE_THROWS_WITH(x.view({4, 2}), Catch::Contains("view: shape [4, 2] is invalid for a tensor of shape [2, 3] (6 elements)"));
  REQUIRE_THROWS_WITH(x.reshape({-1, 4}), Catch::Contains("reshape: shape [-1, 4] is invalid for a tensor of shape [2, 3]"));
  CHECK(x.unsqueeze(-3).shape() == Shape{1, 2, 3});
  CHECK(x.unsqueeze(2).shape() == Shape{2, 3, 1});
}
