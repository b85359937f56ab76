// Batch-norm kernels, CUDA vs CPU: statistics, normalisation and backward on
// odd NCHW shapes (including H = W = 1), with a large mean offset that a
// one-pass variance would lose. (37, 5, 33, 29) has 35,409 elements a
// channel: three slices of batch rows (plan_bn in batch_norm_kernels.cuh),
// so it takes the sliced statistics and backward and the by-rows
// normalisation (rows of 957); the others take one block per channel.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda batch norm statistics, normalize and backward match the cpu", "[cuda][batch_norm]") {
  Rng gen(61);
  const Shape shapes[] = {{3, 5, 7, 3}, {4, 6, 1, 1}, {2, 3, 9, 11}, {5, 2, 33, 31}, {37, 5, 33, 29}};
  for (DType dt : float_dtypes()) {
    for (const Shape& s : shapes) {
      INFO(dtype_name(dt) << " shape " << shape_str(s));
      const int64_t C = s[1];
      Pair x = normal(s, gen, dt, 2.0);
      {  // offset the data: mean 5, std 2
        std::vector<double> v = x.cpu.to_vector();
        for (double& e : v) e += 5.0;
        x = from_values(v, s, dt);
      }
      Pair mean = outputs({C}, dt), var = outputs({C}, dt), invstd = outputs({C}, dt);
      cpu().batch_norm_stats(x.cpu, mean.cpu, var.cpu, invstd.cpu, 1e-5);
      gpu().batch_norm_stats(x.gpu, mean.gpu, var.gpu, invstd.gpu, 1e-5);
      REQUIRE_PARITY(mean.gpu, mean.cpu, tol_for(dt));
      REQUIRE_PARITY(var.gpu, var.cpu, tol_for(dt));
      REQUIRE_PARITY(invstd.gpu, invstd.cpu, tol_for(dt));
      // Normalise and differentiate with the CPU's statistics on both sides.
      Pair m = from_values(mean.cpu.to_vector(), {C}, dt), is = from_values(invstd.cpu.to_vector(), {C}, dt);
      Pair out = outputs(s, dt);
      cpu().batch_norm_normalize(x.cpu, m.cpu, is.cpu, out.cpu);
      gpu().batch_norm_normalize(x.gpu, m.gpu, is.gpu, out.gpu);
      REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
      Pair gy = normal(s, gen, dt);
      Pair gx = outputs(s, dt);
      cpu().batch_norm_backward(x.cpu, m.cpu, is.cpu, gy.cpu, gx.cpu);
      gpu().batch_norm_backward(x.gpu, m.gpu, is.gpu, gy.gpu, gx.gpu);
      REQUIRE_PARITY(gx.gpu, gx.cpu, tol_for(dt));
    }
  }
}
