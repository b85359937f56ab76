#include "core/backend.h"

#include <atomic>
#include <cstdlib>

#include "kernels/cpu/cpu_backend.h"
// Plain C++ in every build; only its switches are defined without CUDA
// (below), the rest by kernels/cuda/.
#include "kernels/cuda/cuda_runtime_api.h"

namespace sagan {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
      return "neg";
    case UnaryOp::Relu:
      return "relu";
    case UnaryOp::LeakyRelu:
      return "leaky_relu";
    case UnaryOp::Tanh:
      return "tanh";
    case UnaryOp::Sigmoid:
      return "sigmoid";
    case UnaryOp::Softplus:
      return "softplus";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Log:
      return "log";
    case UnaryOp::Sqrt:
      return "sqrt";
    case UnaryOp::Abs:
      return "abs";
    case UnaryOp::Square:
      return "square";
    case UnaryOp::PowScalar:
      return "pow";
    case UnaryOp::AddScalar:
      return "add_scalar";
    case UnaryOp::MulScalar:
      return "mul_scalar";
    case UnaryOp::RDivScalar:
      return "rdiv_scalar";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    case BinaryOp::Div:
      return "div";
    case BinaryOp::Pow:
      return "pow";
    case BinaryOp::Max:
      return "maximum";
    case BinaryOp::Min:
      return "minimum";
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

// ---- switches of kernels/cuda/cuda_runtime_api.h that exist in every build

namespace {
constexpr AttentionImpl kAttentionImpls[] = {AttentionImpl::Fused, AttentionImpl::Unfused, AttentionImpl::TcF32,
                                             AttentionImpl::TcTf32, AttentionImpl::TcBf16};
}  // namespace

const char* attention_impl_name(AttentionImpl impl) {
  switch (impl) {
    case AttentionImpl::Fused:
      return "fused";
    case AttentionImpl::Unfused:
      return "unfused";
    case AttentionImpl::TcF32:
      return "tc-fp32";
    case AttentionImpl::TcTf32:
      return "tc-tf32";
    case AttentionImpl::TcBf16:
      return "tc-bf16";
  }
  return "?";
}

AttentionImpl parse_attention_impl(const std::string& text, const std::string& what) {
  for (AttentionImpl impl : kAttentionImpls)
    if (text == attention_impl_name(impl)) return impl;
  SAGAN_FAIL(
      "{}: invalid attention implementation '{}' (expected 'fused', 'unfused', 'tc-fp32', 'tc-tf32' or "
      "'tc-bf16')",
      what, text);
}

namespace {
// -1: not set by set_cuda_attention_impl, the environment decides.
std::atomic<int> g_attention_impl{-1};

AttentionImpl attention_impl_from_env() {
  // Read once; an invalid value throws here and again at the next call
  // (a throwing initialiser leaves the static uninitialised).
  static const AttentionImpl impl = [] {
    const char* v = std::getenv("SAGAN_CUDA_ATTENTION");
    if (v == nullptr || v[0] == '\0') return AttentionImpl::Fused;
    return parse_attention_impl(v, "environment variable SAGAN_CUDA_ATTENTION");
  }();
  return impl;
}
}  // namespace

void set_cuda_attention_impl(AttentionImpl impl) { g_attention_impl.store(static_cast<int>(impl)); }

AttentionImpl cuda_attention_impl() {
  const int set = g_attention_impl.load();
  return set < 0 ? attention_impl_from_env() : static_cast<AttentionImpl>(set);
}

const char* sn_power_impl_name(SnPowerImpl impl) { return impl == SnPowerImpl::RowChunks ? "row-chunks" : "columns"; }

SnPowerImpl parse_sn_power_impl(const std::string& text, const std::string& what) {
  if (text == "columns") return SnPowerImpl::Columns;
  if (text == "row-chunks") return SnPowerImpl::RowChunks;
  SAGAN_FAIL("{}: invalid power-iteration implementation '{}' (expected 'columns' or 'row-chunks')", what, text);
}

namespace {
std::atomic<int> g_sn_power_impl{-1};  // -1: the environment decides
}  // namespace

void set_cuda_sn_power_impl(SnPowerImpl impl) { g_sn_power_impl.store(static_cast<int>(impl)); }

SnPowerImpl cuda_sn_power_impl() {
  const int set = g_sn_power_impl.load();
  if (set >= 0) return static_cast<SnPowerImpl>(set);
  static const SnPowerImpl from_env = [] {
    const char* v = std::getenv("SAGAN_CUDA_SN_POWER");
    if (v == nullptr || v[0] == '\0') return SnPowerImpl::Columns;
    return parse_sn_power_impl(v, "environment variable SAGAN_CUDA_SN_POWER");
  }();
  return from_env;
}

#ifndef SAGAN_WITH_CUDA
// Without a CUDA backend TF32 has nothing to apply to; the setting is only
// recorded (kernels/cuda/cuda_backend.cpp defines these in CUDA builds).
namespace {
std::atomic<bool> g_tf32{false};
}  // namespace
void set_cuda_tf32(bool enabled) { g_tf32.store(enabled); }
bool cuda_tf32_enabled() { return g_tf32.load(); }
#endif

}  // namespace sagan
