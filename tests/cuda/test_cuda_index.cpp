// index_add into a tensor that already holds values, CUDA vs CPU: repeated,
// unsorted indices accumulate on top of what is there, with the ordered
// kernel (deterministic mode, the default) and with atomics. The
// gathers (index_select, float and int64 rows) and index_add into zeros (the
// gradient of index_select and embedding) are the registry's "cuda parity:
// index_select" and "cuda parity: embedding" (tests/ops/op_cases.cpp).
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda index_add accumulates into existing values like the cpu", "[cuda][index]") {
  const bool deterministic = GENERATE(true, false);
  INFO("deterministic " << deterministic);
  DeterministicGuard mode(deterministic);
  Rng gen(81);
  const std::vector<int64_t> rows{4, 0, 6, 4, 4, 2, 6, 1, 3};  // repeats, unsorted
  Tensor idx_c = Tensor::from_vector(rows, {9});
  Tensor idx_g = idx_c.to(dev());
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    Pair src = normal({3, 9, 5}, gen, dt);
    Pair acc = normal({3, 7, 5}, gen, dt);  // accumulates: not poisoned
    cpu().index_add(src.cpu, idx_c, acc.cpu);
    gpu().index_add(src.gpu, idx_g, acc.gpu);
    REQUIRE_PARITY(acc.gpu, acc.cpu, tol_for(dt));
  }
}

TEST_CASE("cuda index_add in deterministic mode repeats bit for bit", "[cuda][index][deterministic]") {
  // Many repeats of few rows (an embedding's backward over a batch): the
  // order of the additions decides the last bits.
  DeterministicGuard mode(true);
  Rng gen(82);
  std::vector<int64_t> rows(512);
  for (size_t j = 0; j < rows.size(); ++j) rows[j] = static_cast<int64_t>((j * 7 + j / 3) % 10);
  Tensor idx = Tensor::from_vector(rows, {512}).to(dev());
  Tensor src = Tensor::randn({1, 512, 300}, gen, DType::F32).to(dev());
  Tensor first = Tensor::zeros({1, 10, 300}, DType::F32, dev());
  Tensor again = Tensor::zeros({1, 10, 300}, DType::F32, dev());
  gpu().index_add(src, idx, first);
  gpu().index_add(src, idx, again);
  REQUIRE(bitwise_equal(first, again));
}
