// DiffAugment on CUDA tensors (composed from engine ops) against the CPU:
// the same Rng gives the same augmentation on both devices, forward and
// input gradient, float64 and float32.
#include "sagan/core/ops.h"
#include "sagan/layers/diffaugment.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda diffaugment matches the cpu for the same Rng", "[cuda][diffaugment]") {
  const nn::DiffAugmentPolicy policy = nn::DiffAugmentPolicy::parse("color,translation,cutout");
  Rng gen(29);
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    Pair x = uniform({5, 3, 20, 14}, -1.0, 1.0, gen, dt);
    Tensor xc = x.cpu.detach().set_requires_grad(true), xg = x.gpu.detach().set_requires_grad(true);
    Rng rc(7), rg(7);
    Tensor yc = nn::diffaugment(xc, policy, rc), yg = nn::diffaugment(xg, policy, rg);
    REQUIRE(yg.device() == dev());
    REQUIRE(rc.position() == rg.position());
    REQUIRE_PARITY(yg, yc, tol_for(dt));
    Pair gy = normal({5, 3, 20, 14}, gen, dt);
    yc.backward(gy.cpu);
    yg.backward(gy.gpu);
    REQUIRE_PARITY(xg.grad(), xc.grad(), tol_for(dt));
  }
}
