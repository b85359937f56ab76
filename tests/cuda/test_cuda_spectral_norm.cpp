// One spectral-norm power iteration per call, CUDA vs CPU, over several
// matrices of odd shapes (including a single row and a single column) in one
// call, step for step over several calls. float32 with unit-stride u and v
// runs the batched kernels (sn_power_batched.h, all matrices in one call),
// float64 and strided vectors the per-matrix gemv path; which one ran is told
// apart by the batched path's one workspace allocation. Small sizes:
// [spectral_norm] (also run under compute-sanitizer); SAGAN-128's layers:
// [spectral_norm_sagan].
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

struct Layers {
  std::vector<Tensor> wc, wg, uc, ug, vc, vg;
};

Layers make_layers(const std::vector<Shape>& shapes, Rng& gen, DType dt) {
  Layers l;
  for (const Shape& s : shapes) {
    // Weights as SN layers hold them: (out, in) or (out, in, k, k), viewed
    // (out, in k k) by the kernel.
    Pair w = normal(s, gen, dt, 0.1), u = normal({s[0]}, gen, dt), v = normal({numel_of(s) / s[0]}, gen, dt);
    l.wc.push_back(w.cpu.reshape({s[0], numel_of(s) / s[0]})), l.wg.push_back(w.gpu);
    l.uc.push_back(u.cpu), l.ug.push_back(u.gpu);
    l.vc.push_back(v.cpu), l.vg.push_back(v.gpu);
  }
  return l;
}

// `steps` iterations on both devices, compared after each.
void check_steps(Layers& l, const std::vector<Shape>& shapes, DType dt, int steps, int64_t want_allocations) {
  for (int step = 0; step < steps; ++step) {
    INFO(dtype_name(dt) << " iteration " << step);
    cpu().power_iteration(l.wc, l.uc, l.vc, 1e-12);
    CHECK(allocations_during([&] { gpu().power_iteration(l.wg, l.ug, l.vg, 1e-12); }) == want_allocations);
    for (size_t i = 0; i < shapes.size(); ++i) {
      INFO("matrix " << i << " " << shape_str(shapes[i]));
      REQUIRE_PARITY(l.ug[i], l.uc[i], tol_for(dt));
      REQUIRE_PARITY(l.vg[i], l.vc[i], tol_for(dt));
    }
  }
}

// SAGAN-like SN layers at an odd width: a G and a D of ch = 12 at 32x32
// (4 x 4 start, up to 4 ch channels, 3x3 and 1x1 convolutions, attention's
// 1x1 q, k, v, o at C / 8 and C / 2, linear and embedding layers): 61
// matrices, past one 48-matrix launch group of the batched kernels.
std::vector<Shape> sagan_like_shapes(int64_t ch) {
  std::vector<Shape> s;
  const int64_t z = 17, classes = 10;
  s.push_back({4 * 4 * 4 * ch, z});  // G linear
  int64_t cin = 4 * ch;
  for (int64_t cout : {4 * ch, 2 * ch, ch}) {  // G blocks
    s.push_back({cout, cin, 3, 3});
    s.push_back({cout, cout, 3, 3});
    s.push_back({cout, cin, 1, 1});
    s.push_back({classes, cin});  // CBN gain / bias embeddings
    s.push_back({classes, cout});
    cin = cout;
  }
  for (int64_t c : {2 * ch, ch}) {  // attention in G and D
    s.push_back({c / 8, c, 1, 1});
    s.push_back({c / 8, c, 1, 1});
    s.push_back({c / 2, c, 1, 1});
    s.push_back({c, c / 2, 1, 1});
  }
  s.push_back({3, ch, 3, 3});  // G to RGB
  cin = 3;
  for (int64_t cout : {ch, 2 * ch, 4 * ch, 4 * ch}) {  // D blocks
    s.push_back({cout, cin, 3, 3});
    s.push_back({cout, cout, 3, 3});
    s.push_back({cout, cin, 1, 1});
    cin = cout;
  }
  s.push_back({1, 4 * ch});        // D linear
  s.push_back({classes, 4 * ch});  // D projection embedding
  // Odd extras: single rows and columns, rows not a multiple of 4.
  for (int i = 0; s.size() < 61; ++i) s.push_back({1 + (i * 37) % 131, 1 + (i * 91) % 301});
  return s;
}

}  // namespace

TEST_CASE("cuda power iteration matches the cpu", "[cuda][spectral_norm]") {
  Rng gen(101);
  const std::vector<Shape> shapes{{5, 7}, {9, 4}, {1, 6}, {6, 1}, {64, 27}, {3, 3}, {7, 5, 3, 3}};
  for (DType dt : float_dtypes()) {
    Layers l = make_layers(shapes, gen, dt);
    check_steps(l, shapes, dt, 3, dt == DType::F32 ? 1 : 0);
  }
}

TEST_CASE("cuda power iteration over many SAGAN-like layers in one call", "[cuda][spectral_norm]") {
  Rng gen(102);
  const std::vector<Shape> shapes = sagan_like_shapes(12);
  REQUIRE(shapes.size() > 48);
  for (DType dt : float_dtypes()) {
    Layers l = make_layers(shapes, gen, dt);
    check_steps(l, shapes, dt, 4, dt == DType::F32 ? 1 : 0);
  }
}

TEST_CASE("cuda power iteration: float32 with strided vectors takes the per-matrix path", "[cuda][spectral_norm]") {
  Rng gen(103);
  const std::vector<Shape> shapes{{5, 7}, {9, 4}};
  const DType dt = DType::F32;
  Layers l = make_layers(shapes, gen, dt);
  // u of the first matrix as every other element of a longer vector.
  Pair big = normal({10}, gen, dt);
  l.uc[0] = big.cpu.slice(0, 0, 10, 2).contiguous();
  l.ug[0] = big.gpu.slice(0, 0, 10, 2);
  REQUIRE(l.ug[0].strides()[0] == 2);
  // The second still goes to the batched kernels: one workspace.
  check_steps(l, shapes, dt, 2, 1);
}

TEST_CASE("cuda power iteration matches the cpu on SAGAN-128's layers", "[cuda][spectral_norm_sagan]") {
  Rng gen(104);
  // SAGAN-128 at ch = 64: G 1024 wide at 4x4, conv3x3 up to (1024, 9216),
  // the linear (16384, 128), attention at 128 and 64 channels, D to 1024.
  std::vector<Shape> shapes{{16384, 128}, {3, 64, 3, 3}, {10, 1024}, {1, 1024}};
  for (int64_t c : {1024, 512, 256, 128, 64}) {
    shapes.push_back({c, std::min<int64_t>(2 * c, 1024), 3, 3});
    shapes.push_back({c, c, 3, 3});
    shapes.push_back({c, std::min<int64_t>(2 * c, 1024), 1, 1});
  }
  for (int64_t c : {128, 64}) {
    shapes.push_back({c / 8, c, 1, 1});
    shapes.push_back({c / 2, c, 1, 1});
    shapes.push_back({c, c / 2, 1, 1});
  }
  for (DType dt : float_dtypes()) {
    Layers l = make_layers(shapes, gen, dt);
    check_steps(l, shapes, dt, 3, dt == DType::F32 ? 1 : 0);
  }
}
