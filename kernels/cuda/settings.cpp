// The settings of kernels/cuda/settings.h: plain C++, compiled in every
// build (CMakeLists.txt lists it with the CPU sources).
#include "kernels/cuda/settings.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace sagan {

namespace {
std::atomic<bool> g_tf32{false};
// -1: not set by set_cuda_attention_impl, the environment decides.
std::atomic<int> g_attention_impl{-1};
constexpr size_t kDefaultScoreBudget = size_t(256) << 20;
std::atomic<size_t> g_score_budget{kDefaultScoreBudget};

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

void set_cuda_tf32(bool enabled) { g_tf32.store(enabled); }
bool cuda_tf32_enabled() { return g_tf32.load(); }

const char* attention_impl_name(AttentionImpl impl) { return impl == AttentionImpl::Unfused ? "unfused" : "fused"; }

AttentionImpl parse_attention_impl(const std::string& text, const std::string& what) {
  if (text == "fused") return AttentionImpl::Fused;
  if (text == "unfused") return AttentionImpl::Unfused;
  SAGAN_FAIL("{}: invalid attention implementation '{}' (expected 'fused' or 'unfused')", what, text);
}

void set_cuda_attention_impl(AttentionImpl impl) { g_attention_impl.store(static_cast<int>(impl)); }

AttentionImpl cuda_attention_impl() {
  const int set = g_attention_impl.load();
  return set < 0 ? attention_impl_from_env() : static_cast<AttentionImpl>(set);
}

void set_cuda_attention_workspace_limit(size_t bytes) {
  g_score_budget.store(bytes == 0 ? kDefaultScoreBudget : bytes);
}
size_t cuda_attention_workspace_limit() { return g_score_budget.load(); }

}  // namespace sagan
