// Elementwise kernels, CUDA vs CPU: every unary op forward and backward and
// every binary op, on odd shapes, through permuted, sliced and broadcast
// (stride 0) inputs, and with the output aliasing an input.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

struct UnaryCase {
  UnaryOp op;
  double alpha;
  bool positive;  // domain: inputs in (0.2, 3) instead of N(0, 1.5^2)
};

const UnaryCase kUnary[] = {
    {UnaryOp::Neg, 0, false},         {UnaryOp::Relu, 0, false},         {UnaryOp::LeakyRelu, 0.2, false},
    {UnaryOp::Tanh, 0, false},        {UnaryOp::Sigmoid, 0, false},      {UnaryOp::Softplus, 0, false},
    {UnaryOp::Exp, 0, false},         {UnaryOp::Log, 0, true},           {UnaryOp::Sqrt, 0, true},
    {UnaryOp::Abs, 0, false},         {UnaryOp::Square, 0, false},       {UnaryOp::PowScalar, 2.5, true},
    {UnaryOp::AddScalar, 0.7, false}, {UnaryOp::MulScalar, -1.3, false}, {UnaryOp::RDivScalar, 3.0, true},
};

Pair input(const UnaryCase& c, const Shape& shape, Rng& gen, DType dt) {
  return c.positive ? uniform(shape, 0.2, 3.0, gen, dt) : normal(shape, gen, dt, 1.5);
}

// The views every unary test runs through: dense, permuted, sliced with a
// step, and broadcast along one dim.
std::vector<std::pair<const char*, std::function<Pair(const UnaryCase&, Rng&, DType)>>> unary_inputs() {
  return {
      {"dense (3,5,7)",
       [](const UnaryCase& c, Rng& g, DType dt) {
         return input(c, {3, 5, 7}, g, dt);
       }},
      {"permuted",
       [](const UnaryCase& c, Rng& g, DType dt) {
         return view(input(c, {7, 3, 5}, g, dt), [](const Tensor& t) { return t.permute({1, 2, 0}); });
       }},
      {"sliced",
       [](const UnaryCase& c, Rng& g, DType dt) {
         return view(input(c, {3, 11, 9}, g, dt), [](const Tensor& t) { return t.slice(1, 1, 11, 2).slice(2, 2, 9); });
       }},
      {"broadcast",
       [](const UnaryCase& c, Rng& g, DType dt) {
         return view(input(c, {3, 1, 7}, g, dt), [](const Tensor& t) { return t.expand({3, 5, 7}); });
       }},
  };
}

}  // namespace

TEST_CASE("cuda unary forward matches the cpu for every op and view", "[cuda][elementwise]") {
  Rng gen(21);
  for (DType dt : float_dtypes()) {
    for (const auto& c : kUnary) {
      for (const auto& [what, make] : unary_inputs()) {
        INFO(dtype_name(dt) << " " << unary_op_name(c.op) << " on " << what);
        Pair x = make(c, gen, dt);
        Pair out = outputs(x.cpu.shape(), dt);
        cpu().unary(c.op, x.cpu, out.cpu, c.alpha);
        gpu().unary(c.op, x.gpu, out.gpu, c.alpha);
        REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
      }
    }
  }
}

TEST_CASE("cuda unary backward matches the cpu for every op and view", "[cuda][elementwise]") {
  Rng gen(22);
  for (DType dt : float_dtypes()) {
    for (const auto& c : kUnary) {
      for (const auto& [what, make] : unary_inputs()) {
        INFO(dtype_name(dt) << " " << unary_op_name(c.op) << " backward, x " << what);
        Pair x = make(c, gen, dt);
        // y = f(x) from the CPU in float64, rounded to the GPU dtype.
        Tensor y64 = Tensor::empty(x.cpu.shape(), DType::F64);
        cpu().unary(c.op, x.cpu, y64, c.alpha);
        Pair y = from_values(y64.to_vector(), y64.shape(), dt);
        // gy through a transposed view.
        Pair gy = view(normal({x.cpu.size(2), x.cpu.size(1), x.cpu.size(0)}, gen, dt), [](const Tensor& t) {
          return t.permute({2, 1, 0});
        });
        Pair gx = outputs(x.cpu.shape(), dt);
        cpu().unary_backward(c.op, x.cpu, y.cpu, gy.cpu, gx.cpu, c.alpha);
        gpu().unary_backward(c.op, x.gpu, y.gpu, gy.gpu, gx.gpu, c.alpha);
        REQUIRE_PARITY(gx.gpu, gx.cpu, tol_for(dt));
      }
    }
  }
}

TEST_CASE("cuda binary ops broadcast and alias like the cpu", "[cuda][elementwise]") {
  Rng gen(23);
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div,
                          BinaryOp::Pow, BinaryOp::Max, BinaryOp::Min};
  for (DType dt : float_dtypes()) {
    for (BinaryOp op : ops) {
      INFO(dtype_name(dt) << " " << binary_op_name(op));
      const bool positive = op == BinaryOp::Pow || op == BinaryOp::Div;
      // a: a permuted (3,5,7) view; b: (5,1) broadcast to (3,5,7).
      Pair a = view(positive ? uniform({5, 7, 3}, 0.5, 2.0, gen, dt) : normal({5, 7, 3}, gen, dt), [](const Tensor& t) {
        return t.permute({2, 0, 1});
      });
      Pair b = view(positive ? uniform({5, 1}, 0.5, 2.0, gen, dt) : normal({5, 1}, gen, dt), [](const Tensor& t) {
        return t.expand({3, 5, 7});
      });
      Pair out = outputs({3, 5, 7}, dt);
      cpu().binary(op, a.cpu, b.cpu, out.cpu);
      gpu().binary(op, a.gpu, b.gpu, out.gpu);
      REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
      // Scalar broadcast on the left, dense on the right.
      Pair s = view(positive ? uniform({1}, 0.5, 2.0, gen, dt) : normal({1}, gen, dt), [](const Tensor& t) {
        return t.reshape({1, 1, 1}).expand({3, 5, 7});
      });
      Pair d = positive ? uniform({3, 5, 7}, 0.5, 2.0, gen, dt) : normal({3, 5, 7}, gen, dt);
      Pair out2 = outputs({3, 5, 7}, dt);
      cpu().binary(op, s.cpu, d.cpu, out2.cpu);
      gpu().binary(op, s.gpu, d.gpu, out2.gpu);
      REQUIRE_PARITY(out2.gpu, out2.cpu, tol_for(dt));
      // In place: out is a (same geometry).
      Pair x = positive ? uniform({4, 9}, 0.5, 2.0, gen, dt) : normal({4, 9}, gen, dt);
      Pair y = positive ? uniform({4, 9}, 0.5, 2.0, gen, dt) : normal({4, 9}, gen, dt);
      Tensor want = poisoned({4, 9}, DType::F64, Device::cpu());
      cpu().binary(op, x.cpu, y.cpu, want);
      gpu().binary(op, x.gpu, y.gpu, x.gpu);
      REQUIRE_PARITY(x.gpu, want, tol_for(dt));
    }
  }
}

TEST_CASE("cuda elementwise kernels cover large and high-rank tensors", "[cuda][elementwise]") {
  Rng gen(24);
  // More elements than one grid-stride pass of the capped grid covers, and 8
  // non-mergeable dims.
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    Pair big = normal({3, 700001}, gen, dt);
    Pair out = outputs({3, 700001}, dt);
    cpu().unary(UnaryOp::Tanh, big.cpu, out.cpu, 0);
    gpu().unary(UnaryOp::Tanh, big.gpu, out.gpu, 0);
    REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
    Shape s8{2, 3, 2, 3, 2, 3, 2, 3};
    Pair x = view(normal({3, 2, 3, 2, 3, 2, 3, 2}, gen, dt), [](const Tensor& t) {
      return t.permute({7, 6, 5, 4, 3, 2, 1, 0});
    });
    Pair o8 = outputs(s8, dt);
    cpu().unary(UnaryOp::Square, x.cpu, o8.cpu, 0);
    gpu().unary(UnaryOp::Square, x.gpu, o8.gpu, 0);
    REQUIRE_PARITY(o8.gpu, o8.cpu, tol_for(dt));
  }
}
