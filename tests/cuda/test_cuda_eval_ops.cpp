// The vision ops of the evaluation networks (core/ops_vision.h) chained on
// CUDA tensors: conv2d_rect runs on cuDNN, the general pools and bilinear
// resizing on their own kernels (kernels/cuda/pool2d.cu,
// resize_bilinear.cu), forward and backward; results and gradients must live
// on the device and equal the CPU's; then once more with those kernels
// declined, through the CPU fallback's host copies. Outputs come from the device allocator, which is
// poisoned first so that an element never written shows as NaN. Each op on
// its own: the registry's "cuda parity: <op>" (tests/ops/op_cases.cpp).
#include "sagan/core/ops.h"
#include "sagan/core/ops_vision.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
struct Leaves {
  Tensor x, w, b, mix;
};

Leaves make_leaves(Device d, DType dt) {
  Rng gen(23);
  auto leaf = [&](const Shape& s) {
    Tensor t = Tensor::randn(s, gen, DType::F64, Device::cpu()).to(dt).to(d).detach();
    t.set_requires_grad(true);
    return t;
  };
  return {leaf({2, 3, 9, 11}), leaf({4, 3, 1, 3}), leaf({4}), leaf({2, 4, 7, 5})};
}

// Every evaluation op once, odd sizes throughout.
Tensor chain(const Leaves& l, Tensor* mid) {
  Tensor h = conv2d_rect(l.x, l.w, l.b, {1, 2, 0, 1});             // (2,4,9,6)
  h = add(max_pool2d(h, 3, 1, 1), avg_pool2d(h, 3, 1, 1, false));  // (2,4,9,6)
  h = avg_pool2d(h, 2, 1, 0, true);                                // (2,4,8,5)
  h = resize_bilinear(h, 13, 7);                                   // (2,4,13,7)
  *mid = adaptive_avg_pool2d(h, 7, 5);                             // (2,4,7,5)
  return sum(mul(*mid, l.mix));
}

void check_chain() {
  for (DType dt : float_dtypes()) {
    INFO("dtype " << dtype_name(dt));
    poison_allocator({{2, 4, 9, 6}, {2, 4, 8, 5}, {2, 4, 13, 7}, {2, 4, 7, 5}, {2, 3, 9, 11}, {4, 3, 1, 3}}, dt);
    Leaves c = make_leaves(Device::cpu(), dt), g = make_leaves(dev(), dt);
    Tensor mc, mg;
    Tensor lc = chain(c, &mc), lg = chain(g, &mg);
    REQUIRE(mg.device() == dev());
    REQUIRE_PARITY(mg, mc, tol_for(dt));
    REQUIRE_PARITY(lg, lc, tol_for(dt));
    lc.backward();
    lg.backward();
    const std::pair<const char*, std::pair<Tensor, Tensor>> grads[] = {
        {"x", {g.x, c.x}}, {"w", {g.w, c.w}}, {"b", {g.b, c.b}}, {"mix", {g.mix, c.mix}}};
    for (const auto& [name, pair] : grads) {
      INFO("gradient of " << name);
      REQUIRE(pair.first.grad().defined());
      REQUIRE(pair.first.grad().device() == dev());
      REQUIRE_PARITY(pair.first.grad(), pair.second.grad(), tol_for(dt));
    }
  }
}
}  // namespace

TEST_CASE("cuda vision ops chained match the cpu, values and gradients", "[cuda][eval_ops]") { check_chain(); }

// The same through the CPU fallback: the pools' and the resize's kernels
// declined (Backend::set_declined, SAGAN_CUDA_DECLINE's mechanism), so the
// generic host-copy path runs on a real device, as it would for any kernel
// a backend lacks.
TEST_CASE("cuda vision ops through the CPU fallback match the cpu", "[cuda][eval_ops][fallback]") {
  const KernelId declined[] = {KernelId::pool2d,
                               KernelId::pool2d_backward,
                               KernelId::adaptive_avg_pool2d,
                               KernelId::adaptive_avg_pool2d_backward,
                               KernelId::resize_bilinear,
                               KernelId::resize_bilinear_backward};
  Backend& be = backend_for(dev());
  struct Restore {
    Backend& be;
    const KernelId* ids;
    size_t n;
    ~Restore() {
      for (size_t i = 0; i < n; ++i) be.set_declined(ids[i], false);
    }
  } restore{be, declined, std::size(declined)};
  for (KernelId id : declined) {
    be.set_declined(id, true);
    REQUIRE_FALSE(be.implements(id));
  }
  check_chain();
}
