// One spectral-norm power iteration, CUDA vs CPU, over several matrices of
// odd shapes (including a single row and a single column) in one call.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

TEST_CASE("cuda power iteration matches the cpu", "[cuda][spectral_norm]") {
  Generator gen(101);
  const std::vector<Shape> shapes{{5, 7}, {9, 4}, {1, 6}, {6, 1}, {64, 27}, {3, 3}};
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    std::vector<Tensor> wc, wg, uc, ug, vc, vg;
    for (const Shape& s : shapes) {
      Pair w = normal(s, gen, dt), u = normal({s[0]}, gen, dt), v = normal({s[1]}, gen, dt);
      wc.push_back(w.cpu), wg.push_back(w.gpu);
      uc.push_back(u.cpu), ug.push_back(u.gpu);
      vc.push_back(v.cpu), vg.push_back(v.gpu);
    }
    cpu().power_iteration(wc, uc, vc, 1e-12);
    gpu().power_iteration(wg, ug, vg, 1e-12);
    for (size_t i = 0; i < shapes.size(); ++i) {
      INFO("matrix " << i << " " << shape_str(shapes[i]));
      REQUIRE_PARITY(ug[i], uc[i], tol_for(dt));
      REQUIRE_PARITY(vg[i], vc[i], tol_for(dt));
    }
    // A second iteration continues from the updated vectors.
    cpu().power_iteration(wc, uc, vc, 1e-12);
    gpu().power_iteration(wg, ug, vg, 1e-12);
    for (size_t i = 0; i < shapes.size(); ++i) REQUIRE_PARITY(ug[i], uc[i], tol_for(dt));
  }
}
