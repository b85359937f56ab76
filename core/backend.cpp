#include "core/backend.h"

#include "kernels/cpu/cpu_backend.h"
#ifdef SAGAN_WITH_CUDA
#include "kernels/cuda/cuda_runtime_api.h"
#endif

namespace sagan {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::LeakyRelu: return "leaky_relu";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Softplus: return "softplus";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Square: return "square";
    case UnaryOp::PowScalar: return "pow";
    case UnaryOp::AddScalar: return "add_scalar";
    case UnaryOp::MulScalar: return "mul_scalar";
    case UnaryOp::RDivScalar: return "rdiv_scalar";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Pow: return "pow";
    case BinaryOp::Max: return "maximum";
    case BinaryOp::Min: return "minimum";
  }
  return "binary";
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) return cpu_backend();
#ifdef SAGAN_WITH_CUDA
  return cuda_backend(device.index);
#else
  SAGAN_FAIL("device {}: this build of sagan has no CUDA backend (configure with -DSAGAN_CUDA=ON)",
             device_name(device));
#endif
}

int cuda_device_count() {
#ifdef SAGAN_WITH_CUDA
  return cuda_runtime_device_count();
#else
  return 0;
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

}  // namespace sagan
