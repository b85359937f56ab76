// index_select, embedding and concat: values and gradients against PyTorch
// goldens, strided and int64 inputs, the parallel scatter path, and error
// messages. Gradient checks (repeated indices, uneven concat pieces) and
// CUDA parity: tests/ops/op_cases.cpp.
#include <catch2/catch.hpp>

#include "sagan/core/ops.h"
#include "tests/golden/norm_pool_goldens.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
Tensor idx(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n});
}
}  // namespace

TEST_CASE("index_select matches PyTorch along every dim", "[index][golden]") {
  for (int dim = 0; dim < 3; ++dim) {
    const auto& c = norm_pool_case("index_select_dim" + std::to_string(dim));
    const auto iv = c.at("idx").get<std::vector<int64_t>>();
    for (DType dt : {DType::F64, DType::F32}) {
      INFO("dim " << dim << " " << dtype_name(dt));
      const double rtol = dt == DType::F64 ? 1e-15 : 1e-6, atol = dt == DType::F64 ? 1e-15 : 1e-6;
      Tensor x = golden_tensor(c, "x", dt, true);
      Tensor y = index_select(x, dim, idx(iv));
      REQUIRE(y.shape() == c.at("out_shape").get<Shape>());
      REQUIRE_CLOSE(y, golden_values(c, "out"), rtol, atol);
      REQUIRE_CLOSE(input_grad(x, y, golden_tensor(c, "gy", dt)), golden_values(c, "gx"), rtol, atol);
    }
  }
}

TEST_CASE("embedding and concat match PyTorch", "[index][golden]") {
  const auto& c = norm_pool_case("embedding");
  Tensor ids = golden_indices(c, "idx", c.at("idx_shape").get<Shape>());
  for (DType dt : {DType::F64, DType::F32}) {
    INFO(dtype_name(dt));
    const double tol = dt == DType::F64 ? 1e-15 : 1e-6;
    Tensor w = golden_tensor(c, "weight", dt, true);
    Tensor y = embedding(w, ids);
    REQUIRE(y.shape() == Shape{2, 3, 3});
    REQUIRE_CLOSE(y, golden_values(c, "out"), tol, tol);
    REQUIRE_CLOSE(input_grad(w, y, golden_tensor(c, "gy", dt)), golden_values(c, "gx"), tol, tol);
  }
  const auto& k = norm_pool_case("concat_dim1");
  Tensor y = concat({golden_tensor(k, "a"), golden_tensor(k, "b"), golden_tensor(k, "c")}, k.at("dim").get<int64_t>());
  REQUIRE(y.shape() == Shape{2, 6, 4});
  REQUIRE(y.to_vector() == golden_values(k, "out"));
}

TEST_CASE("index_select and embedding by hand, strided and int64 inputs", "[index]") {
  // x (2, 3): columns 2, 0, 2 of each row.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64);
  CHECK(index_select(x, 1, idx({2, 0, 2})).to_vector() == std::vector<double>{3, 1, 3, 6, 4, 6});
  CHECK(index_select(x, -1, idx({1})).to_vector() == std::vector<double>{2, 5});
  CHECK(index_select(x, 0, idx({})).shape() == Shape{0, 3});
  // The transposed view (3, 2) selects rows of x^T.
  CHECK(index_select(x.t(), 0, idx({2, 1})).to_vector() == std::vector<double>{3, 6, 2, 5});
  // Indices may be a strided view too.
  Tensor long_idx = idx({1, 9, 0, 9, 1});
  CHECK(index_select(x, 1, long_idx.slice(0, 0, 5, 2)).to_vector() == std::vector<double>{2, 1, 2, 5, 4, 5});
  // int64 data (labels) gathers like any other dtype.
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{7, 8, 9}, {3});
  CHECK(index_select(labels, 0, idx({2, 2, 0})).to_int_vector() == std::vector<int64_t>{9, 9, 7});
  // Embedding of a 0-d index is one row of shape (D).
  Tensor w = Tensor::from_vector(std::vector<double>{0, 1, 10, 11, 20, 21}, {3, 2}, DType::F64);
  Tensor e = embedding(w, Tensor::from_vector(std::vector<int64_t>{2}, {}));
  CHECK(e.shape() == Shape{2});
  CHECK(e.to_vector() == std::vector<double>{20, 21});
  // Repeated indices accumulate in the weight gradient.
  w.set_requires_grad(true);
  Tensor y = embedding(w, Tensor::from_vector(std::vector<int64_t>{1, 1, 2, 1}, {2, 2}));
  Tensor g = input_grad(w, y, Tensor::ones({2, 2, 2}, DType::F64));
  CHECK(g.to_vector() == std::vector<double>{0, 0, 3, 3, 1, 1});
}

TEST_CASE("concat by hand: dims, int64, views, partial requires_grad", "[index]") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}, DType::F64);
  Tensor b = Tensor::from_vector(std::vector<double>{5, 6}, {2, 1}, DType::F64);
  CHECK(concat({a, b}, 1).to_vector() == std::vector<double>{1, 2, 5, 3, 4, 6});
  CHECK(concat({a, b.t()}, 0).to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(concat({a}, -1).to_vector() == a.to_vector());
  CHECK(concat({a, Tensor::zeros({2, 0}, DType::F64), b}, 1).shape() == Shape{2, 3});
  Tensor i = Tensor::from_vector(std::vector<int64_t>{1, 2}, {2});
  CHECK(concat({i, i}, 0).to_int_vector() == std::vector<int64_t>{1, 2, 1, 2});
  // Only inputs that require grad get a gradient.
  a.set_requires_grad(true);
  Tensor y = concat({b, a}, 1);
  Tensor g = input_grad(a, y, Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64));
  CHECK(g.to_vector() == std::vector<double>{2, 3, 5, 6});
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("index_add parallel path accumulates repeats deterministically", "[index]") {
  // Embedding backward with D = 700 spans three column blocks of the kernel
  // and 64 x 700 gradient elements, over the parallel threshold.
  Rng gen(32);
  const int64_t v = 20, d = 700, n = 64;
  Tensor w = randn64({v, d}, gen);
  std::vector<int64_t> iv(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) iv[static_cast<size_t>(j)] = (j * 7) % 5 + (j % 3) * 5;  // rows 0..14, repeats
  Tensor gy = Tensor::randn({n, d}, gen, DType::F64);
  Tensor g = input_grad(w, embedding(w, idx(iv)), gy);
  std::vector<double> ref(static_cast<size_t>(v * d), 0.0), gv = gy.to_vector();
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < d; ++k)
      ref[static_cast<size_t>(iv[static_cast<size_t>(j)] * d + k)] += gv[static_cast<size_t>(j * d + k)];
  // The kernel adds in index order, as this loop does: bitwise equal.
  REQUIRE(g.to_vector() == ref);
}

TEST_CASE("index and concat errors name the op, index and shapes", "[index][errors]") {
  Tensor x = Tensor::zeros({3, 4});
  REQUIRE_THROWS_WITH(index_select(x, 1, idx({0, 4})), Catch::Contains("index_select") && Catch::Contains("index 4") &&
                                                           Catch::Contains("size 4") && Catch::Contains("[3, 4]"));
  REQUIRE_THROWS_WITH(index_select(x, 0, idx({-1})),
                      Catch::Contains("index_select") && Catch::Contains("index -1") && Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(index_select(x, 2, idx({0})), Catch::Contains("index_select") && Catch::Contains("dim 2"));
  REQUIRE_THROWS_WITH(index_select(x, 0, Tensor::zeros({2})),
                      Catch::Contains("index_select") && Catch::Contains("int64") && Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(index_select(x, 0, Tensor::zeros({1, 2}, DType::I64)),
                      Catch::Contains("index_select") && Catch::Contains("1-d") && Catch::Contains("[1, 2]"));
  REQUIRE_THROWS_WITH(embedding(Tensor::zeros({5, 2}), idx({1, 5})),
                      Catch::Contains("embedding") && Catch::Contains("index 5") && Catch::Contains("size 5"));
  // embedding's input is the indices: the shape shown is the weight's, named so.
  REQUIRE_THROWS_WITH(embedding(Tensor::zeros({5, 2}), idx({7})), Catch::Contains("(weight shape [5, 2])"));
  REQUIRE_THROWS_WITH(index_select(x, 0, idx({3})), Catch::Contains("(input shape [3, 4])"));
  REQUIRE_THROWS_WITH(embedding(Tensor::zeros({5}), idx({1})),
                      Catch::Contains("embedding") && Catch::Contains("2-d") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({3, 3})}, 1),
                      Catch::Contains("concat") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 3]"));
  REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3, 1})}, 0),
                      Catch::Contains("concat") && Catch::Contains("[2, 3, 1]"));
  REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3}, DType::F64)}, 0),
                      Catch::Contains("concat") && Catch::Contains("dtype") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(concat({}, 0), Catch::Contains("concat") && Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(concat({Tensor::zeros({2})}, 1), Catch::Contains("concat") && Catch::Contains("dim 1"));
}
