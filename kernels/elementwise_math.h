// Per-element formulas of the unary and binary ops and their derivatives,
// shared by the CPU and CUDA backends (host/device functors), so that both
// backends evaluate the same expression.
#pragma once
#include <cmath>

#include "sagan/core/backend.h"
#include "sagan/kernels/host_device.h"

namespace sagan::math {

// softplus(x) = log(1 + e^x), stable for large |x| (PyTorch's threshold 20).
template <class T>
SAGAN_HD T softplus(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}
template <class T>
SAGAN_HD T sigmoid(T x) {
  return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

#define SAGAN_U(NAME, EXPR)                 \
  struct NAME {                             \
    template <class T>                      \
    SAGAN_HD T operator()(T x, T a) const { \
      (void)a;                              \
      return EXPR;                          \
    }                                       \
  };
SAGAN_U(Neg, -x)
// relu passes NaN on, as PyTorch does (x <= 0 is false for NaN): a NaN
// activation must reach the losses, where the NaN guard looks, not vanish.
SAGAN_U(Relu, x <= T(0) ? T(0) : x)
SAGAN_U(LeakyRelu, x > T(0) ? x : a * x)
SAGAN_U(Tanh, std::tanh(x))
SAGAN_U(Sigmoid, sigmoid(x))
SAGAN_U(Softplus, softplus(x))
SAGAN_U(Exp, std::exp(x))
SAGAN_U(Log, std::log(x))
SAGAN_U(Sqrt, std::sqrt(x))
SAGAN_U(Abs, std::abs(x))
SAGAN_U(Square, x* x)
SAGAN_U(PowScalar, std::pow(x, a))
SAGAN_U(AddScalar, x + a)
SAGAN_U(MulScalar, x* a)
SAGAN_U(RDivScalar, a / x)
#undef SAGAN_U

// Input gradients g * f'(x) given x, y = f(x), alpha and the output's
// gradient g. Piecewise derivatives select instead of multiplying by 0, so an
// infinite g stays out of the inactive side (inf * 0 would be NaN; PyTorch
// selects too).
#define SAGAN_D(NAME, EXPR)                           \
  struct NAME {                                       \
    template <class T>                                \
    SAGAN_HD T operator()(T x, T y, T a, T g) const { \
      (void)x;                                        \
      (void)y;                                        \
      (void)a;                                        \
      return EXPR;                                    \
    }                                                 \
  };
SAGAN_D(dNeg, -g)
// PyTorch's threshold_backward: the gradient passes where x is NaN too.
SAGAN_D(dRelu, x <= T(0) ? T(0) : g)
SAGAN_D(dLeakyRelu, x > T(0) ? g : g * a)
SAGAN_D(dTanh, g*(T(1) - y * y))
SAGAN_D(dSigmoid, g*(y*(T(1) - y)))
SAGAN_D(dSoftplus, g* sigmoid(x))
SAGAN_D(dExp, g* y)
SAGAN_D(dLog, g*(T(1) / x))
SAGAN_D(dSqrt, g*(T(0.5) / y))
SAGAN_D(dAbs, x > T(0) ? g : (x < T(0) ? -g : T(0)))
SAGAN_D(dSquare, g*(T(2) * x))
SAGAN_D(dPowScalar, a == T(0) ? T(0) : g * (a * std::pow(x, a - T(1))))
SAGAN_D(dAddScalar, g)
SAGAN_D(dMulScalar, g* a)
SAGAN_D(dRDivScalar, g*(-y / x))
#undef SAGAN_D

#define SAGAN_B(NAME, EXPR)                 \
  struct NAME {                             \
    template <class T>                      \
    SAGAN_HD T operator()(T x, T y) const { \
      return EXPR;                          \
    }                                       \
  };
SAGAN_B(Add, x + y)
SAGAN_B(Sub, x - y)
SAGAN_B(Mul, x* y)
SAGAN_B(Div, x / y)
SAGAN_B(Pow, std::pow(x, y))
// A NaN on either side gives NaN (PyTorch's maximum/minimum), whatever the
// order; a tie gives x.
SAGAN_B(Max, (x >= y || x != x) ? x : y)
SAGAN_B(Min, (x <= y || x != x) ? x : y)
#undef SAGAN_B

// with_*<T>(op, k) calls k(functor) with the functor of op; a switch written
// once so every backend dispatches the same way.
template <class T, class K>
void with_unary(UnaryOp op, K&& k) {
  switch (op) {
    case UnaryOp::Neg:
      return k(Neg{});
    case UnaryOp::Relu:
      return k(Relu{});
    case UnaryOp::LeakyRelu:
      return k(LeakyRelu{});
    case UnaryOp::Tanh:
      return k(Tanh{});
    case UnaryOp::Sigmoid:
      return k(Sigmoid{});
    case UnaryOp::Softplus:
      return k(Softplus{});
    case UnaryOp::Exp:
      return k(Exp{});
    case UnaryOp::Log:
      return k(Log{});
    case UnaryOp::Sqrt:
      return k(Sqrt{});
    case UnaryOp::Abs:
      return k(Abs{});
    case UnaryOp::Square:
      return k(Square{});
    case UnaryOp::PowScalar:
      return k(PowScalar{});
    case UnaryOp::AddScalar:
      return k(AddScalar{});
    case UnaryOp::MulScalar:
      return k(MulScalar{});
    case UnaryOp::RDivScalar:
      return k(RDivScalar{});
  }
}
template <class T, class K>
void with_unary_grad(UnaryOp op, K&& k) {
  switch (op) {
    case UnaryOp::Neg:
      return k(dNeg{});
    case UnaryOp::Relu:
      return k(dRelu{});
    case UnaryOp::LeakyRelu:
      return k(dLeakyRelu{});
    case UnaryOp::Tanh:
      return k(dTanh{});
    case UnaryOp::Sigmoid:
      return k(dSigmoid{});
    case UnaryOp::Softplus:
      return k(dSoftplus{});
    case UnaryOp::Exp:
      return k(dExp{});
    case UnaryOp::Log:
      return k(dLog{});
    case UnaryOp::Sqrt:
      return k(dSqrt{});
    case UnaryOp::Abs:
      return k(dAbs{});
    case UnaryOp::Square:
      return k(dSquare{});
    case UnaryOp::PowScalar:
      return k(dPowScalar{});
    case UnaryOp::AddScalar:
      return k(dAddScalar{});
    case UnaryOp::MulScalar:
      return k(dMulScalar{});
    case UnaryOp::RDivScalar:
      return k(dRDivScalar{});
  }
}
template <class T, class K>
void with_binary(BinaryOp op, K&& k) {
  switch (op) {
    case BinaryOp::Add:
      return k(Add{});
    case BinaryOp::Sub:
      return k(Sub{});
    case BinaryOp::Mul:
      return k(Mul{});
    case BinaryOp::Div:
      return k(Div{});
    case BinaryOp::Pow:
      return k(Pow{});
    case BinaryOp::Max:
      return k(Max{});
    case BinaryOp::Min:
      return k(Min{});
  }
}

}  // namespace sagan::math
