// conv2d through cuDNN vs the CPU backend: forward (with and without bias),
// backward-input and backward-weight over odd geometries (kernel 1 and 3,
// stride 1 and 2, pad 0 and 1, odd H and W), float64 and float32, plus the
// TF32 path and the algorithm cache across repeated calls.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
struct Geo {
  int64_t B, Ci, H, W, Co, k, stride, pad;
};
const Geo kGeos[] = {
    {2, 3, 7, 9, 5, 3, 1, 1}, {3, 4, 8, 7, 6, 3, 2, 1}, {2, 5, 9, 9, 3, 1, 1, 0},
    {1, 2, 6, 5, 4, 3, 2, 0}, {2, 3, 5, 7, 2, 1, 2, 0}, {3, 7, 11, 13, 5, 3, 1, 0},
};
int64_t out_size(int64_t n, const Geo& g) { return (n + 2 * g.pad - g.k) / g.stride + 1; }
}  // namespace

TEST_CASE("cuda conv2d forward matches the cpu", "[cuda][conv2d]") {
  Rng gen(51);
  for (DType dt : float_dtypes()) {
    for (const Geo& g : kGeos) {
      for (bool with_bias : {false, true}) {
        INFO(dtype_name(dt) << " x [" << g.B << "," << g.Ci << "," << g.H << "," << g.W << "] w [" << g.Co << ","
                            << g.Ci << "," << g.k << "," << g.k << "] stride " << g.stride << " pad " << g.pad
                            << (with_bias ? " bias" : ""));
        Pair x = normal({g.B, g.Ci, g.H, g.W}, gen, dt);
        Pair w = normal({g.Co, g.Ci, g.k, g.k}, gen, dt, 0.5);
        Pair b = normal({g.Co}, gen, dt);
        const Shape os{g.B, g.Co, out_size(g.H, g), out_size(g.W, g)};
        Pair y = outputs(os, dt);
        const Conv2dGeom cg{g.stride, g.pad};
        cpu().conv2d(x.cpu, w.cpu, with_bias ? std::optional<Tensor>(b.cpu) : std::nullopt, y.cpu, cg);
        gpu().conv2d(x.gpu, w.gpu, with_bias ? std::optional<Tensor>(b.gpu) : std::nullopt, y.gpu, cg);
        REQUIRE_PARITY(y.gpu, y.cpu, tol_for(dt));
        // Second call: the cached plan and algorithm.
        Tensor again = poisoned(os, dt, dev());
        gpu().conv2d(x.gpu, w.gpu, with_bias ? std::optional<Tensor>(b.gpu) : std::nullopt, again, cg);
        REQUIRE_PARITY(again, y.cpu, tol_for(dt));
      }
    }
  }
}

TEST_CASE("cuda conv2d backward input and weight match the cpu", "[cuda][conv2d]") {
  Rng gen(52);
  for (DType dt : float_dtypes()) {
    for (const Geo& g : kGeos) {
      INFO(dtype_name(dt) << " x [" << g.B << "," << g.Ci << "," << g.H << "," << g.W << "] w [" << g.Co << "," << g.Ci
                          << "," << g.k << "," << g.k << "] stride " << g.stride << " pad " << g.pad);
      const Shape xs{g.B, g.Ci, g.H, g.W}, ws{g.Co, g.Ci, g.k, g.k};
      Pair x = normal(xs, gen, dt);
      Pair w = normal(ws, gen, dt, 0.5);
      Pair gy = normal({g.B, g.Co, out_size(g.H, g), out_size(g.W, g)}, gen, dt);
      const Conv2dGeom cg{g.stride, g.pad};
      Pair gx = outputs(xs, dt);
      cpu().conv2d_backward_input(gy.cpu, w.cpu, gx.cpu, cg);
      gpu().conv2d_backward_input(gy.gpu, w.gpu, gx.gpu, cg);
      REQUIRE_PARITY(gx.gpu, gx.cpu, tol_for(dt));
      Pair gw = outputs(ws, dt);
      cpu().conv2d_backward_weight(gy.cpu, x.cpu, gw.cpu, cg);
      gpu().conv2d_backward_weight(gy.gpu, x.gpu, gw.gpu, cg);
      REQUIRE_PARITY(gw.gpu, gw.cpu, tol_for(dt));
    }
  }
}

TEST_CASE("cuda conv2d in TF32 stays within 1e-3", "[cuda][conv2d][tf32]") {
  Rng gen(53);
  Tf32Scope on(true);
  Pair x = normal({4, 32, 16, 16}, gen, DType::F32), w = normal({48, 32, 3, 3}, gen, DType::F32, 0.2);
  Pair y = outputs({4, 48, 16, 16}, DType::F32);
  cpu().conv2d(x.cpu, w.cpu, std::nullopt, y.cpu, {1, 1});
  gpu().conv2d(x.gpu, w.gpu, std::nullopt, y.gpu, {1, 1});
  auto g = y.gpu.to_vector(), c = y.cpu.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    REQUIRE(std::isfinite(g[i]));
    num += (g[i] - c[i]) * (g[i] - c[i]);
    den += c[i] * c[i];
  }
  const double err = std::sqrt(num / den);
  INFO("TF32 conv2d normwise error " << err);
  REQUIRE(err <= kTolTF32);
}
