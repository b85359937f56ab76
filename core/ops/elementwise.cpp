// Elementwise front ends: broadcasting binary ops, scalar ops, activations.
#include "sagan/core/ops.h"
#include "sagan/core/ops/common.h"

namespace sagan {

using detail::backend_of;
using detail::saved;

namespace {

// What each derivative of kernels/elementwise_math.h (dRelu, dTanh, ...)
// reads besides the output's gradient: x, y = f(x), both or neither. Only
// those are kept until backward and checked for changes in place: saving
// both would keep every activation's input and output alive, and refuse a
// backward after an in-place change the gradient never reads. (A wrong
// entry here reads the gradient instead and fails the unary gradchecks.)
struct DerivativeReads {
  bool x, y;
};
DerivativeReads derivative_reads(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::AddScalar:
    case UnaryOp::MulScalar:
      return {false, false};
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Exp:
    case UnaryOp::Sqrt:
      return {false, true};
    case UnaryOp::RDivScalar:
      return {true, true};
    case UnaryOp::Relu:
    case UnaryOp::LeakyRelu:
    case UnaryOp::Softplus:
    case UnaryOp::Log:
    case UnaryOp::Abs:
    case UnaryOp::Square:
    case UnaryOp::PowScalar:
      return {true, false};
  }
  return {true, true};
}

Tensor unary_op(UnaryOp op, const Tensor& x, double alpha = 0.0) {
  const char* name = unary_op_name(op);
  detail::check_float(name, x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).unary(op, x, out, alpha);
  const DerivativeReads reads = derivative_reads(op);
  record(name, out, {x},
         [op, alpha, x = reads.x ? saved(x) : detail::SavedTensor(), y = reads.y ? saved(out) : detail::SavedTensor()](
             const Tensor& g, const std::vector<bool>&) {
           Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
           // An operand the derivative does not read is passed as g (same
           // shape): the kernel loads it and ignores it.
           backend_of(g).unary_backward(op, x.defined() ? x.get() : g, y.defined() ? y.get() : g, g, gx, alpha);
           return std::vector<Tensor>{gx};
         });
  return out;
}

// g * [not x <= 0]: the relu derivative (g passes where x is NaN), which
// routes max/min gradients by a 0/1 mask (a select: an infinite g stays
// inf, never inf * 0).
Tensor step_grad(const Tensor& x, const Tensor& g) {
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).unary_backward(UnaryOp::Relu, x, x, g, gx, 0.0);
  return gx;
}

// [x > 0] as 0 or 1, and 0 where x is NaN: leaky_relu's derivative with
// slope 0 applied to ones (1 * 0 on the inactive side). Unlike relu's, it
// does not pass NaN on, so the masks built from it stay 0/1.
Tensor positive_mask(const Tensor& x) {
  const Tensor ones = Tensor::ones(x.shape(), x.dtype(), x.device());
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).unary_backward(UnaryOp::LeakyRelu, x, x, ones, mask, 0.0);
  return mask;
}

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  detail::check_same(name, a, b);
  detail::check_float(name, a);
  Shape s = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  backend_of(a).binary(op, a.detach().expand(s), b.detach().expand(s), out);
  return out;
}

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  Tensor out = binary_raw(op, a, b, name);
  record(name, out, {a, b},
         [op, a = saved(a), b = saved(b), y = saved(out)](const Tensor& g, const std::vector<bool>& needs) {
           Tensor ga, gb;
           switch (op) {
             case BinaryOp::Add:
               ga = g, gb = g;
               break;
             case BinaryOp::Sub:
               ga = g, gb = needs[1] ? neg(g) : Tensor();
               break;
             case BinaryOp::Mul:
               if (needs[0]) ga = mul(g, b);
               if (needs[1]) gb = mul(g, a);
               break;
             case BinaryOp::Div:
               if (needs[0]) ga = div(g, b);
               if (needs[1]) gb = neg(div(mul(g, y), b));
               break;
             case BinaryOp::Pow:
               // b a^(b - 1), which is 0 where b = 0 (PyTorch's too): there
               // the exponent is taken as 0, not -1, so that 0^-1 = inf
               // never meets b = 0. [b != 0] = [b > 0] + [-b > 0].
               if (needs[0]) {
                 const Tensor b_nonzero = add(positive_mask(b), positive_mask(neg(b)));
                 ga = mul(g, mul(b, pow(a, sub(b, b_nonzero))));
               }
               // d(a^b)/db = a^b log a, which is 0 at a = 0 where b >= 0, as
               // PyTorch has it; y log a would give 0 * -inf = NaN there, so
               // the log is taken of 1 where a is 0 and b >= 0. Where b < 0
               // it stays inf * -inf = -inf, PyTorch's value too.
               // [a == 0] = 1 - [a > 0] - [-a > 0]; [b >= 0] = 1 - [-b > 0].
               if (needs[1]) {
                 const Tensor ones_a = Tensor::ones(a.shape(), a.dtype(), a.device());
                 const Tensor ones_b = Tensor::ones(b.shape(), b.dtype(), b.device());
                 const Tensor a_is_zero = sub(sub(ones_a, positive_mask(a)), positive_mask(neg(a)));
                 const Tensor b_nonneg = sub(ones_b, positive_mask(neg(b)));
                 gb = mul(g, mul(y, log(add(a, mul(a_is_zero, b_nonneg)))));
               }
               break;
             // Ties send the gradient to a; so does a NaN on either side (the
             // output is NaN then, and so is the loss). The gradient is routed
             // by selects, never g * 0 or g - g: an infinite g must not become
             // NaN on either side.
             case BinaryOp::Max:
             case BinaryOp::Min: {
               const Tensor b_wins = op == BinaryOp::Max ? sub(b, a) : sub(a, b);  // > 0 where b is picked
               const Tensor ones = Tensor::ones(b_wins.shape(), b_wins.dtype(), b_wins.device());
               // 0 where b_wins is NaN: a NaN side, or a tie at infinity (inf - inf).
               const Tensor b_mask = positive_mask(b_wins);
               ga = step_grad(sub(ones, b_mask), g);
               gb = step_grad(b_mask, g);
               break;
             }
           }
           return std::vector<Tensor>{needs[0] && ga.defined() ? sum_to_shape(ga, a.shape()) : Tensor(),
                                      needs[1] && gb.defined() ? sum_to_shape(gb, b.shape()) : Tensor()};
         });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Max, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Min, a, b); }

Tensor add(const Tensor& a, double s) { return unary_op(UnaryOp::AddScalar, a, s); }
Tensor mul(const Tensor& a, double s) { return unary_op(UnaryOp::MulScalar, a, s); }
Tensor rsub(double s, const Tensor& a) { return add(neg(a), s); }
Tensor rdiv(double s, const Tensor& a) { return unary_op(UnaryOp::RDivScalar, a, s); }
Tensor pow(const Tensor& a, double e) { return unary_op(UnaryOp::PowScalar, a, e); }
Tensor neg(const Tensor& x) { return unary_op(UnaryOp::Neg, x); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::Relu, x); }
Tensor leaky_relu(const Tensor& x, double slope) { return unary_op(UnaryOp::LeakyRelu, x, slope); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::Sigmoid, x); }
Tensor softplus(const Tensor& x) { return unary_op(UnaryOp::Softplus, x); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::Sqrt, x); }
Tensor abs(const Tensor& x) { return unary_op(UnaryOp::Abs, x); }
Tensor square(const Tensor& x) { return unary_op(UnaryOp::Square, x); }

}  // namespace sagan
