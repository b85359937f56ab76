// index_select and index_add, CUDA vs CPU, with repeated and unsorted
// indices (index_add accumulates repeats with atomics), float and int64 rows.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda index_select and index_add match the cpu", "[cuda][index]") {
  Rng gen(81);
  const std::vector<int64_t> rows{4, 0, 6, 4, 4, 2, 6, 1, 3};  // repeats, unsorted
  Tensor idx_c = Tensor::from_vector(rows, {9});
  Tensor idx_g = idx_c.to(dev());
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    Pair x = normal({3, 7, 5}, gen, dt);
    Pair out = outputs({3, 9, 5}, dt);
    cpu().index_select(x.cpu, idx_c, out.cpu);
    gpu().index_select(x.gpu, idx_g, out.gpu);
    REQUIRE_PARITY(out.gpu, out.cpu, 0.0);
    Pair src = normal({3, 9, 5}, gen, dt);
    Pair acc = normal({3, 7, 5}, gen, dt);  // accumulates: not poisoned
    cpu().index_add(src.cpu, idx_c, acc.cpu);
    gpu().index_add(src.gpu, idx_g, acc.gpu);
    REQUIRE_PARITY(acc.gpu, acc.cpu, tol_for(dt));
    // Embedding-like: (1, V, D) rows, many lookups.
    std::vector<int64_t> many(1000);
    for (auto& r : many) r = static_cast<int64_t>(gen.below(10));
    Tensor mi_c = Tensor::from_vector(many, {1000}), mi_g = mi_c.to(dev());
    Pair table = normal({1, 10, 33}, gen, dt);
    Pair looked = outputs({1, 1000, 33}, dt);
    cpu().index_select(table.cpu, mi_c, looked.cpu);
    gpu().index_select(table.gpu, mi_g, looked.gpu);
    REQUIRE_PARITY(looked.gpu, looked.cpu, 0.0);
    Pair gsrc = normal({1, 1000, 33}, gen, dt);
    Pair gtable = outputs({1, 10, 33}, dt);
    cpu().fill(gtable.cpu, 0.0);
    gpu().fill(gtable.gpu, 0.0);
    cpu().index_add(gsrc.cpu, mi_c, gtable.cpu);
    gpu().index_add(gsrc.gpu, mi_g, gtable.gpu);
    REQUIRE_PARITY(gtable.gpu, gtable.cpu, tol_for(dt));
  }
  // int64 rows gather too (labels).
  std::vector<int64_t> labels(3 * 7 * 2);
  for (auto& l : labels) l = static_cast<int64_t>(gen.below(1000));
  Tensor lc = Tensor::from_vector(labels, {3, 7, 2}), lg = lc.to(dev());
  Tensor oc = poisoned({3, 9, 2}, DType::I64, Device::cpu()), og = poisoned({3, 9, 2}, DType::I64, dev());
  cpu().index_select(lc, idx_c, oc);
  gpu().index_select(lg, idx_g, og);
  REQUIRE(og.to_int_vector() == oc.to_int_vector());
}
