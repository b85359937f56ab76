// The arithmetic of float32 matrix products on every backend: GEMMs (bmm,
// linear layers), convolutions, and the CUDA attention's products. The
// training step's --precision (models/train_options.cpp) sets it; weights,
// gradients, Adam state, spectral-norm vectors and batch-norm statistics stay
// float32 whatever it is (master weights), and float64 is never rounded.
//
//   Fp32  full float32 (the default).
//   Tf32  operands rounded to TF32 (10 mantissa bits), float32 accumulation:
//         cuBLAS / cuDNN TF32 tensor-core math, the tc-tf32 attention.
//   Bf16  operands rounded to bfloat16 (7 mantissa bits, to nearest even),
//         float32 accumulation: cuBLAS and cuDNN on bf16 copies (a
//         convolution's results are bf16, so its output and gradients are
//         rounded to bf16 too), the tc-bf16 attention. bf16 keeps float32's
//         exponent range: no loss scaling.
//
// The CPU backend emulates the rounding bit for bit (core/reduced_precision.h)
// around its float32 bmm and convolutions, so reduced-precision numerics are
// tested without a GPU (slower than Fp32: it copies the operands). Its
// attention op is not emulated (its products run inside the op's own loops);
// the tensor-core attention kernels' rounding is checked by their emulated
// tests instead.
//
// Process-wide, for calls made after it; the environment variable
// SAGAN_MATMUL_PRECISION=fp32|tf32|bf16 gives the default (read once, when
// first needed; other values throw naming the variable). sagan-train sets it
// from --precision, so the variable matters to programs that embed the engine.
#pragma once
#include <string>

namespace sagan {

enum class MatmulPrecision { Fp32, Tf32, Bf16 };

void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();

// "fp32", "tf32", "bf16", and the inverse (other text throws naming `what`).
const char* matmul_precision_name(MatmulPrecision p);
MatmulPrecision parse_matmul_precision(const std::string& text, const std::string& what);

// Scoped setting (tests, tools).
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(MatmulPrecision p) : prev_(matmul_precision()) { set_matmul_precision(p); }
  ~MatmulPrecisionScope() { set_matmul_precision(prev_); }
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  MatmulPrecision prev_;
};

}  // namespace sagan
