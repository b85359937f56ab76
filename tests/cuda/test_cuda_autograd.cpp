// The op front ends with autograd on CUDA: a small network's loss and every
// parameter gradient, computed on cuda:0 and on the CPU in float64, agree.
// This exercises the backend as the engine uses it (allocation, views,
// broadcasting, gradient accumulation), beyond single kernels.
#include "sagan/core/ops.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
struct Net {
  Tensor x, w1, b1, w2, q, gain;
};

Net make_net(Device d, uint64_t seed) {
  Rng gen(seed);
  auto leaf = [&](const Shape& s, double scale) {
    Tensor t = mul(Tensor::randn(s, gen, DType::F64, Device::cpu()), scale).to(d).detach();
    t.set_requires_grad(true);
    return t;
  };
  return {leaf({2, 3, 8, 7}, 1.0), leaf({4, 3, 3, 3}, 0.3), leaf({4}, 0.1),
          leaf({12, 5}, 0.3),      leaf({2, 6, 5}, 0.5),    leaf({1, 4, 1, 1}, 1.0)};
}

// conv -> batch norm -> leaky relu -> max/avg pool -> upsample -> linear map
// -> attention -> softmax -> weighted sum.
Tensor loss_of(const Net& n) {
  Tensor h = conv2d(n.x, n.w1, n.b1, 1, 1);                // (2,4,8,7)
  h = batch_norm(h, Tensor(), Tensor(), true, 0.1, 1e-5);  // (2,4,8,7)
  h = leaky_relu(mul(h, n.gain), 0.2);
  Tensor p = add(max_pool2x2(h), avg_pool2x2(h));  // (2,4,4,3)
  Tensor u = upsample_nearest2x(p);                // (2,4,8,6)
  Tensor f = u.reshape({2, 4 * 8 * 6 / 12, 12});   // (2,16,12)
  Tensor z = matmul(f, n.w2);                      // (2,16,5)
  Tensor a = attention(z, n.q, n.q).out;           // (2,16,5)
  Tensor s = softmax(tanh(a), 1);
  return sum(mul(s, sigmoid(z)));
}
}  // namespace

TEST_CASE("cuda autograd through the op front ends matches the cpu", "[cuda][autograd]") {
  Net c = make_net(Device::cpu(), 7), g = make_net(dev(), 7);
  Tensor lc = loss_of(c), lg = loss_of(g);
  REQUIRE(lg.device() == dev());
  REQUIRE_PARITY(lg, lc, kTolF64);
  lc.backward();
  lg.backward();
  const std::pair<const char*, std::pair<Tensor, Tensor>> grads[] = {{"x", {g.x, c.x}},    {"w1", {g.w1, c.w1}},
                                                                     {"b1", {g.b1, c.b1}}, {"w2", {g.w2, c.w2}},
                                                                     {"q", {g.q, c.q}},    {"gain", {g.gain, c.gain}}};
  for (const auto& [name, pair] : grads) {
    INFO("gradient of " << name);
    REQUIRE(pair.first.grad().defined());
    REQUIRE(pair.first.grad().device() == dev());
    REQUIRE_PARITY(pair.first.grad(), pair.second.grad(), kTolF64);
  }
}
