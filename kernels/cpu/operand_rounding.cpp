// See operand_rounding.h.
#include "sagan/kernels/cpu/operand_rounding.h"

#include <algorithm>

#include "sagan/core/matmul_precision.h"
#include "sagan/core/reduced_precision.h"

namespace sagan::cpu {

namespace {
thread_local bool t_emulating = false;
}  // namespace

bool emulate_precision(const Tensor& operand) {
  return !t_emulating && operand.dtype() == DType::F32 && matmul_precision() != MatmulPrecision::Fp32;
}

EmulationScope::EmulationScope() : prev_(t_emulating) { t_emulating = true; }
EmulationScope::~EmulationScope() { t_emulating = prev_; }

Tensor rounded_operand(const Tensor& t) {
  const MatmulPrecision p = matmul_precision();
  if (t.dtype() != DType::F32 || p == MatmulPrecision::Fp32) return t;
  const Tensor src = t.contiguous();
  Tensor out = Tensor::empty(t.shape(), DType::F32, Device::cpu());
  const float* s = src.data<float>();
  float* d = out.data<float>();
  const int64_t n = t.numel();
  if (p == MatmulPrecision::Bf16) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) d[i] = round_bf16(s[i]);
  } else {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) d[i] = round_tf32(s[i]);
  }
  return out;
}

void round_conv_result(Tensor& out) {
  if (out.dtype() != DType::F32 || matmul_precision() != MatmulPrecision::Bf16) return;
  float* d = out.data<float>();  // the backends' outputs are dense
  const int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) d[i] = round_bf16(d[i]);
}

void add_channel_bias(Tensor& out, const Tensor& bias) {
  const Tensor b = bias.contiguous();
  const float* bp = b.data<float>();
  float* o = out.data<float>();
  const int64_t B = out.size(0), C = out.size(1), P = out.numel() / std::max<int64_t>(B * C, 1);
#pragma omp parallel for schedule(static) if (B * C * P > (1 << 16))
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const float v = bp[bc % C];
    for (int64_t q = 0; q < P; ++q) o[bc * P + q] += v;
  }
}

}  // namespace sagan::cpu
