// conv2d through cuDNN in TF32 against the CPU. Forward (with and without
// bias), backward-input and backward-weight over odd geometries in float64
// and float32, and the algorithm cache across repeated calls, are the
// registry's "cuda parity: conv2d" and "cuda parity: conv2d_rect"
// (tests/ops/op_cases.cpp, tests/cuda/test_ops_parity.cpp).
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda conv2d in TF32 stays within kTolTF32Conv", "[cuda][conv2d][tf32]") {
  Rng gen(53);
  Tf32Scope on(true);
  Pair x = normal({4, 32, 16, 16}, gen, DType::F32), w = normal({48, 32, 3, 3}, gen, DType::F32, 0.2);
  Pair y = outputs({4, 48, 16, 16}, DType::F32);
  cpu().conv2d(x.cpu, w.cpu, std::nullopt, y.cpu, {1, 1});
  gpu().conv2d(x.gpu, w.gpu, std::nullopt, y.gpu, {1, 1});
  const double err = normwise(y.gpu, y.cpu);  // infinite if an element is not finite
  INFO("TF32 conv2d normwise error " << err);
  REQUIRE(err <= kTolTF32Conv);
}
