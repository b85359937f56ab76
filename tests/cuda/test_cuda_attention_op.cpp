// The attention op front end (sagan::attention with autograd), CUDA float32
// vs the CPU in float64 from the same rounded inputs, through both CUDA
// paths: fused (the default) and unfused (selected with
// set_cuda_attention_impl). Forward out (and the map where requested) and the
// gradients of q, k and v from out.backward(g). The front end allocates its
// own outputs, so the allocator's free lists are filled with NaN blocks of
// the output sizes first (poison_allocator): an element the kernels do not
// write stays NaN and fails.
//
// Sizes: N off the 64-query tiles, S = N / 4 (SAGAN's pooled keys), d != dv,
// d above and below the compiled tile widths, dv over several column tiles,
// and large unscaled logits. Inputs are scaled so that scores and dO V^T are
// of order one (scores ~ N(0, 1), as SAGAN's learned q, k give early on);
// then float32 lands near 1e-7..1e-6 of the float64 result and the suite's
// 1e-5 bound holds with margin. The large-logit case is different on purpose
// (below). Small sizes: [attention] (also run under compute-sanitizer);
// SAGAN's sizes: [attention_sagan].
#include <cmath>

#include "sagan/core/ops.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

struct OpCase {
  int64_t B, N, S, d, dv;
  double qk_scale = 0;  // 0: d^(-1/4), scores ~ N(0, 1)
};

// Large unscaled logits (|scores| up to ~60): a score s rounded to float32
// carries an absolute error of about |s| 2^-24 per accumulated product, i.e.
// a relative error of ~4e-6 in P at |s| = 60, whichever path computes it.
// The forward keeps the 1e-5 bound (out, a P-weighted mean of v, measured
// <= 4e-6 on the CPU emulation of the fused kernels at d = 8, 16); the
// backward multiplies those errors by (dP - D) and by |q|, |k| ~ 2 (measured
// up to 1.3e-5), so its bound is 1e-4, the bound of the fused kernels' own
// GPU tests at the same logits.
constexpr double kTolLargeLogitsBackward = 1e-4;

void check_op(const OpCase& z, Rng& gen, AttentionImpl impl, bool with_map, double tol_fwd, double tol_bwd) {
  INFO(attention_impl_name(impl) << (with_map ? " with map" : "") << " B " << z.B << " N " << z.N << " S " << z.S
                                 << " d " << z.d << " dv " << z.dv << " qk scale " << z.qk_scale);
  AttentionImplScope scope(impl);
  const DType dt = DType::F32;
  const double qs = z.qk_scale > 0 ? z.qk_scale : std::pow(double(z.d), -0.25);
  const double vs = std::pow(double(z.dv), -0.25);
  Pair q = normal({z.B, z.N, z.d}, gen, dt, qs), k = normal({z.B, z.S, z.d}, gen, dt, qs);
  Pair v = normal({z.B, z.S, z.dv}, gen, dt, vs), g = normal({z.B, z.N, z.dv}, gen, dt, vs);
  Tensor qc = q.cpu.detach(), kc = k.cpu.detach(), vc = v.cpu.detach();
  Tensor qg = q.gpu.detach(), kg = k.gpu.detach(), vg = v.gpu.detach();
  for (Tensor* t : {&qc, &kc, &vc, &qg, &kg, &vg}) t->set_requires_grad(true);
  const std::vector<Shape> out_shapes{{z.B, z.N, z.dv}, {z.B, z.N}, {z.B, z.N, z.S}};
  const std::vector<Shape> grad_shapes{{z.B, z.N, z.d}, {z.B, z.S, z.d}, {z.B, z.S, z.dv}};

  AttentionResult rc = attention(qc, kc, vc, with_map);
  poison_allocator(out_shapes, dt);
  AttentionResult rg = attention(qg, kg, vg, with_map);
  REQUIRE(rg.out.device() == dev());
  REQUIRE_PARITY(rg.out, rc.out, tol_fwd);
  if (with_map) {
    REQUIRE(rg.map.defined());
    REQUIRE_PARITY(rg.map, rc.map, tol_fwd);
  }

  rc.out.backward(g.cpu);
  poison_allocator(grad_shapes, dt);
  rg.out.backward(g.gpu);
  REQUIRE_PARITY(qg.grad(), qc.grad(), tol_bwd);
  REQUIRE_PARITY(kg.grad(), kc.grad(), tol_bwd);
  REQUIRE_PARITY(vg.grad(), vc.grad(), tol_bwd);
}

const std::vector<OpCase>& small_cases() {
  static const std::vector<OpCase> c{
      {2, 77, 19, 8, 24},     // N off the tiles, S = N / 4, d != dv
      {1, 132, 33, 16, 64},   // three query tiles, the last of 4 rows
      {3, 64, 16, 2, 8},      // N a tile multiple; tiny heads (SAGAN at ch = 4)
      {2, 200, 50, 40, 20},   // d > dv, d padded to 64
      {1, 65, 70, 32, 200},   // S past one key tile, two dv tiles of 128
      {2, 130, 33, 128, 17},  // the largest fused d
      {1, 1, 1, 1, 1},
  };
  return c;
}

}  // namespace

TEST_CASE("cuda attention op matches the cpu through the fused and the unfused path", "[cuda][attention]") {
  Rng gen(301);
  for (AttentionImpl impl : attention_impls())
    for (const OpCase& z : small_cases()) check_op(z, gen, impl, false, kTolF32, kTolF32);
}

TEST_CASE("cuda attention op with large unscaled logits", "[cuda][attention]") {
  Rng gen(302);
  // q, k ~ N(0, 2.2^2) at d = 8 (2.0^2 at d = 16): scores reach +-60 and
  // the softmax rows are nearly one-hot.
  for (AttentionImpl impl : attention_impls()) {
    check_op({2, 100, 25, 8, 32, 2.2}, gen, impl, false, kTolF32, kTolLargeLogitsBackward);
    check_op({1, 300, 75, 16, 64, 1.8}, gen, impl, false, kTolF32, kTolLargeLogitsBackward);
  }
}

TEST_CASE("cuda attention op: asking for the map takes the unfused path and still matches", "[cuda][attention]") {
  Rng gen(303);
  // Fused is selected, but only the unfused path produces the map; the
  // map's NaN-poisoned blocks must all be written.
  for (const OpCase& z : {OpCase{2, 77, 19, 8, 24}, OpCase{1, 65, 70, 32, 200}})
    check_op(z, gen, AttentionImpl::Fused, true, kTolF32, kTolF32);
}

TEST_CASE("cuda attention op falls back to unfused for head sizes the fused kernels do not take", "[cuda][attention]") {
  Rng gen(304);
  check_op({1, 70, 17, 129, 5}, gen, AttentionImpl::Fused, false, kTolF32, kTolF32);
}

TEST_CASE("cuda attention op matches the cpu at SAGAN's attention sizes", "[cuda][attention_sagan]") {
  Rng gen(305);
  // (model, net): N = H W queries, S = N / 4 keys, d = C / 8, dv = C / 2.
  const std::vector<OpCase> cases{
      {16, 256, 64, 32, 128},   // SAGAN-32 G (C = 256), 16x16
      {68, 1024, 256, 16, 64},  // SAGAN-64 (C = 128), 32x32; 272 key-tile blocks: the backward's unsplit path
      {2, 4096, 1024, 16, 64},  // SAGAN-128 G (C = 128), 64x64
      {2, 4096, 1024, 8, 32},   // SAGAN-128 D (C = 64), 64x64
  };
  for (AttentionImpl impl : attention_impls())
    for (const OpCase& z : cases) check_op(z, gen, impl, false, kTolF32, kTolF32);
}
