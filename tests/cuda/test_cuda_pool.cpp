// Pooling and upsampling, CUDA vs CPU: 2x2 average and max pooling on odd
// sizes (floor: the dropped last row/column gets a zero gradient), max with
// deliberate ties (the first maximum in window order takes the gradient), and
// nearest 2x upsampling, each forward and backward.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda avg and max pooling forward and backward match the cpu", "[cuda][pool]") {
  Rng gen(71);
  const Shape shapes[] = {{2, 3, 7, 9}, {1, 2, 8, 6}, {3, 1, 5, 1}, {2, 2, 33, 65}};
  for (DType dt : float_dtypes()) {
    for (const Shape& s : shapes) {
      for (bool ties : {false, true}) {
        INFO(dtype_name(dt) << " shape " << shape_str(s) << (ties ? " with ties" : ""));
        Pair x = normal(s, gen, dt);
        if (ties) {  // values from {-1, -0.5, 0.5, 1}: most windows tie
          std::vector<double> v(static_cast<size_t>(numel_of(s)));
          for (double& e : v)
            e = 0.5 * static_cast<double>(static_cast<int>(gen.below(4)) - 2) + (gen.below(2) ? 0.5 : 0.0);
          for (double& e : v)
            if (e == 0.0) e = 1.0;
          x = from_values(v, s, dt);
        }
        const Shape os{s[0], s[1], s[2] / 2, s[3] / 2};
        Pair avg = outputs(os, dt), mx = outputs(os, dt);
        cpu().avg_pool2x2(x.cpu, avg.cpu);
        gpu().avg_pool2x2(x.gpu, avg.gpu);
        REQUIRE_PARITY(avg.gpu, avg.cpu, tol_for(dt));
        cpu().max_pool2x2(x.cpu, mx.cpu);
        gpu().max_pool2x2(x.gpu, mx.gpu);
        REQUIRE_PARITY(mx.gpu, mx.cpu, 0.0);
        Pair gy = normal(os, gen, dt);
        Pair gxa = outputs(s, dt), gxm = outputs(s, dt);
        cpu().avg_pool2x2_backward(gy.cpu, gxa.cpu);
        gpu().avg_pool2x2_backward(gy.gpu, gxa.gpu);
        REQUIRE_PARITY(gxa.gpu, gxa.cpu, tol_for(dt));
        cpu().max_pool2x2_backward(x.cpu, gy.cpu, gxm.cpu);
        gpu().max_pool2x2_backward(x.gpu, gy.gpu, gxm.gpu);
        REQUIRE_PARITY(gxm.gpu, gxm.cpu, 0.0);
      }
    }
  }
}

TEST_CASE("cuda nearest 2x upsampling forward and backward match the cpu", "[cuda][pool]") {
  Rng gen(72);
  const Shape shapes[] = {{2, 3, 5, 7}, {1, 1, 1, 1}, {3, 2, 16, 9}};
  for (DType dt : float_dtypes()) {
    for (const Shape& s : shapes) {
      INFO(dtype_name(dt) << " shape " << shape_str(s));
      const Shape os{s[0], s[1], 2 * s[2], 2 * s[3]};
      Pair x = normal(s, gen, dt);
      Pair y = outputs(os, dt);
      cpu().upsample_nearest2x(x.cpu, y.cpu);
      gpu().upsample_nearest2x(x.gpu, y.gpu);
      REQUIRE_PARITY(y.gpu, y.cpu, 0.0);
      Pair gy = normal(os, gen, dt);
      Pair gx = outputs(s, dt);
      cpu().upsample_nearest2x_backward(gy.cpu, gx.cpu);
      gpu().upsample_nearest2x_backward(gy.gpu, gx.gpu);
      REQUIRE_PARITY(gx.gpu, gx.cpu, tol_for(dt));
    }
  }
}
