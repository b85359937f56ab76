// The fused multi-tensor Adam and EMA updates, CUDA vs CPU: one call over
// tensors of many sizes (empty, single element, chunk-crossing), with a
// strided gradient.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
const std::vector<Shape> kShapes{{5, 7}, {1}, {0}, {2049}, {3, 5, 2}, {4095}, {17}, {5000}, {2, 3, 3, 3}};
}

TEST_CASE("cuda fused adam matches the cpu over many tensors", "[cuda][optim]") {
  Rng gen(111);
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    std::vector<Tensor> pc, pg, gc, gg, mc, mg, vc, vg;
    for (size_t i = 0; i < kShapes.size(); ++i) {
      const Shape& s = kShapes[i];
      Pair p = normal(s, gen, dt), m = normal(s, gen, dt, 0.1), v = uniform(s, 0.1, 1.0, gen, dt);
      Pair g = normal(s, gen, dt);
      if (i == 0) {  // a transposed (strided) gradient
        g = view(normal({7, 5}, gen, dt), [](const Tensor& t) { return t.t(); });
      }
      pc.push_back(p.cpu), pg.push_back(p.gpu), gc.push_back(g.cpu), gg.push_back(g.gpu);
      mc.push_back(m.cpu), mg.push_back(m.gpu), vc.push_back(v.cpu), vg.push_back(v.gpu);
    }
    AdamHyper h;
    h.lr = 1e-2, h.beta1 = 0.5, h.beta2 = 0.9, h.eps = 1e-8, h.step = 3;
    for (int it = 0; it < 2; ++it) {
      cpu().adam_update(pc, gc, mc, vc, h, std::nullopt, std::nullopt);
      gpu().adam_update(pg, gg, mg, vg, h, std::nullopt, std::nullopt);
      ++h.step;
    }
    for (size_t i = 0; i < kShapes.size(); ++i) {
      INFO("tensor " << i << " " << shape_str(kShapes[i]));
      REQUIRE_PARITY(pg[i], pc[i], tol_for(dt));
      REQUIRE_PARITY(mg[i], mc[i], tol_for(dt));
      REQUIRE_PARITY(vg[i], vc[i], tol_for(dt));
    }
  }
}

TEST_CASE("cuda fused adam and ema updates obey a gate on the device", "[cuda][optim]") {
  Rng gen(113);
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    Pair p = normal({4097}, gen, dt), g = normal({4097}, gen, dt), m = normal({4097}, gen, dt, 0.1),
         v = uniform({4097}, 0.1, 1.0, gen, dt), e = normal({4097}, gen, dt);
    std::vector<Tensor> pc{p.cpu}, pg{p.gpu}, gc{g.cpu}, gg{g.gpu}, mc{m.cpu}, mg{m.gpu}, vc{v.cpu}, vg{v.gpu};
    std::vector<Tensor> ec{e.cpu}, eg{e.gpu};
    AdamHyper h;
    h.lr = 1e-2, h.step = 1;
    const Tensor closed = Tensor::scalar(std::nan(""), dt, Device::cuda(0)), open = Tensor::scalar(0.0, dt, Device::cuda(0));
    gpu().adam_update(pg, gg, mg, vg, h, closed, std::nullopt);  // nothing moves
    gpu().ema_update(eg, pg, 0.5, closed);
    REQUIRE_PARITY(pg[0], pc[0], 0.0);
    REQUIRE_PARITY(mg[0], mc[0], 0.0);
    REQUIRE_PARITY(eg[0], ec[0], 0.0);
    cpu().adam_update(pc, gc, mc, vc, h, std::nullopt, std::nullopt);
    gpu().adam_update(pg, gg, mg, vg, h, open, std::nullopt);
    cpu().ema_update(ec, pc, 0.5, std::nullopt);
    gpu().ema_update(eg, pg, 0.5, open);
    REQUIRE_PARITY(pg[0], pc[0], tol_for(dt));
    REQUIRE_PARITY(vg[0], vc[0], tol_for(dt));
    REQUIRE_PARITY(eg[0], ec[0], tol_for(dt));
    // Step 2's factors read from the device (a replayed graph's) instead of h.step's.
    h.step = 2;
    const AdamScales sc = adam_scales(h, 2);
    const Tensor scales = Tensor::from_vector({sc.step_size, sc.sqrt_bc2}, {2}, dt).to(Device::cuda(0));
    cpu().adam_update(pc, gc, mc, vc, h, std::nullopt, std::nullopt);
    AdamHyper wrong = h;
    wrong.step = 7;
    gpu().adam_update(pg, gg, mg, vg, wrong, open, scales);
    REQUIRE_PARITY(pg[0], pc[0], tol_for(dt));
    REQUIRE_PARITY(mg[0], mc[0], tol_for(dt));
  }
}

TEST_CASE("cuda fused adam over more tensors than one launch takes", "[cuda][optim]") {
  // Past 64 tensors a call is split into launches of at most 64.
  Rng gen(114);
  std::vector<Tensor> pc, pg, gc, gg, mc, mg, vc, vg;
  for (int i = 0; i < 70; ++i) {
    const Shape s{1 + (i * 37) % 300};
    Pair p = normal(s, gen, DType::F32), m = normal(s, gen, DType::F32, 0.1),
         v = uniform(s, 0.1, 1.0, gen, DType::F32), g = normal(s, gen, DType::F32);
    pc.push_back(p.cpu), pg.push_back(p.gpu), gc.push_back(g.cpu), gg.push_back(g.gpu);
    mc.push_back(m.cpu), mg.push_back(m.gpu), vc.push_back(v.cpu), vg.push_back(v.gpu);
  }
  AdamHyper h;
  h.lr = 1e-2, h.step = 2;
  cpu().adam_update(pc, gc, mc, vc, h, std::nullopt, std::nullopt);
  gpu().adam_update(pg, gg, mg, vg, h, std::nullopt, std::nullopt);
  for (size_t i = 0; i < pc.size(); ++i) {
    INFO("tensor " << i);
    REQUIRE_PARITY(pg[i], pc[i], tol_for(DType::F32));
  }
}

TEST_CASE("cuda fused ema update matches the cpu over many tensors", "[cuda][optim]") {
  Rng gen(112);
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    std::vector<Tensor> ec, eg, pc, pg;
    for (const Shape& s : kShapes) {
      Pair e = normal(s, gen, dt), p = normal(s, gen, dt);
      ec.push_back(e.cpu), eg.push_back(e.gpu), pc.push_back(p.cpu), pg.push_back(p.gpu);
    }
    cpu().ema_update(ec, pc, 0.999, std::nullopt);
    gpu().ema_update(eg, pg, 0.999, std::nullopt);
    for (size_t i = 0; i < kShapes.size(); ++i) {
      INFO("tensor " << i << " " << shape_str(kShapes[i]));
      REQUIRE_PARITY(eg[i], ec[i], tol_for(dt));
    }
  }
}
