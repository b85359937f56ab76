// Reductions, CUDA vs CPU: sum over every subset of dims of a 4-d odd shape
// (dense and permuted), each launch shape of the sum kernel (a thread, a
// warp, a block per output, and the two-pass split of long reductions),
// softmax and its backward on short and long rows.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
void check_sum(const Pair& x, const std::vector<bool>& mask, DType dt) {
  Shape os = x.cpu.shape();
  for (size_t i = 0; i < os.size(); ++i)
    if (mask[i]) os[i] = 1;
  Pair out = outputs(os, dt);
  cpu().sum(x.cpu, out.cpu);
  gpu().sum(x.gpu, out.gpu);
  REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
}
}  // namespace

TEST_CASE("cuda sum over every subset of dims, dense and strided", "[cuda][reduce]") {
  Rng gen(31);
  for (DType dt : float_dtypes()) {
    Pair dense = normal({3, 5, 4, 7}, gen, dt);
    Pair strided = view(normal({7, 3, 9, 5}, gen, dt), [](const Tensor& t) {
      return t.permute({1, 3, 0, 2}).slice(3, 1, 9, 2);
    });  // (3,5,7,4)
    for (int m = 0; m < 16; ++m) {
      std::vector<bool> mask{(m & 1) != 0, (m & 2) != 0, (m & 4) != 0, (m & 8) != 0};
      INFO(dtype_name(dt) << " mask " << m);
      check_sum(dense, mask, dt);
      check_sum(strided, mask, dt);
    }
  }
}

TEST_CASE("cuda sum takes every launch shape", "[cuda][reduce]") {
  Rng gen(32);
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    // thread per output (r <= 32): many outputs, short strided reductions.
    check_sum(normal({20, 3001}, gen, dt), {true, false}, dt);
    // warp per output (r <= 4096).
    check_sum(normal({997, 1001}, gen, dt), {false, true}, dt);
    // block per output: few outputs of long reductions, dense and strided.
    check_sum(normal({3, 300007}, gen, dt), {false, true}, dt);
    check_sum(normal({200003, 3}, gen, dt), {true, false}, dt);
    // everything into one element (the split path's partial sums).
    check_sum(normal({5, 7, 11, 13, 17}, gen, dt), {true, true, true, true, true}, dt);
    // a block per output, enough outputs that no output is split.
    check_sum(normal({1000, 5001}, gen, dt), {false, true}, dt);
  }
}

TEST_CASE("cuda softmax and softmax backward match the cpu", "[cuda][reduce]") {
  Rng gen(33);
  const Shape shapes[] = {{7, 13}, {3, 5, 1000}, {2, 4097}, {1, 1}, {300, 33}};
  for (DType dt : float_dtypes()) {
    for (const Shape& s : shapes) {
      INFO(dtype_name(dt) << " shape " << shape_str(s));
      Pair x = normal(s, gen, dt, 3.0);
      Pair y = outputs(s, dt);
      cpu().softmax(x.cpu, y.cpu);
      gpu().softmax(x.gpu, y.gpu);
      REQUIRE_PARITY(y.gpu, y.cpu, tol_for(dt));
      Pair yr = from_values(y.cpu.to_vector(), s, dt);
      Pair gy = normal(s, gen, dt);
      Pair gx = outputs(s, dt);
      cpu().softmax_backward(yr.cpu, gy.cpu, gx.cpu);
      gpu().softmax_backward(yr.gpu, gy.gpu, gx.gpu);
      REQUIRE_PARITY(gx.gpu, gx.cpu, tol_for(dt));
    }
  }
}
