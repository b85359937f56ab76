// The settings of kernels/cuda/settings.h: plain C++, compiled in every
// build (CMakeLists.txt lists it with the CPU sources).
#include "sagan/kernels/cuda/settings.h"

#include <algorithm>
#include <atomic>

#include "sagan/core/backend.h"
#include "sagan/core/env_setting.h"
#include "sagan/core/error.h"

namespace sagan {

namespace {
std::atomic<bool> g_tf32{false};
// -1: not set by set_cuda_attention_impl, the environment decides.
std::atomic<int> g_attention_impl{-1};
constexpr size_t kDefaultScoreBudget = size_t(256) << 20;
std::atomic<size_t> g_score_budget{kDefaultScoreBudget};

AttentionImpl attention_impl_from_env() {
  static const AttentionImpl impl = env_setting("SAGAN_CUDA_ATTENTION", AttentionImpl::Fused, parse_attention_impl);
  return impl;
}
}  // namespace

void set_cuda_tf32(bool enabled) { g_tf32.store(enabled); }
bool cuda_tf32_enabled() { return g_tf32.load(); }

constexpr AttentionImpl kAttentionImpls[] = {AttentionImpl::Fused, AttentionImpl::Unfused, AttentionImpl::TcF32,
                                             AttentionImpl::TcTf32, AttentionImpl::TcBf16};

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

SnPowerImpl sn_power_impl_from_env() {
  static const SnPowerImpl impl = env_setting("SAGAN_CUDA_SN_POWER", SnPowerImpl::Columns, parse_sn_power_impl);
  return impl;
}
}  // namespace

void set_cuda_sn_power_impl(SnPowerImpl impl) { g_sn_power_impl.store(static_cast<int>(impl)); }

SnPowerImpl cuda_sn_power_impl() {
  const int set = g_sn_power_impl.load();
  return set < 0 ? sn_power_impl_from_env() : static_cast<SnPowerImpl>(set);
}

namespace {
std::atomic<int> g_deterministic{-1};  // -1: the environment decides

// A 1|0 environment switch.
bool parse_switch(const std::string& text, const std::string& what) {
  if (text == "1") return true;
  if (text == "0") return false;
  SAGAN_FAIL("{}: invalid value '{}' (expected 1 or 0)", what, text);
}

bool deterministic_from_env() {
  static const bool on = env_setting("SAGAN_CUDA_DETERMINISTIC", true, parse_switch);
  return on;
}
}  // namespace

void set_cuda_deterministic(bool enabled) { g_deterministic.store(enabled ? 1 : 0); }

bool cuda_deterministic() {
  const int set = g_deterministic.load();
  return set < 0 ? deterministic_from_env() : set == 1;
}

namespace {
std::atomic<int> g_fill_allocations{-1};  // -1: the environment decides

bool fill_allocations_from_env() {
  static const bool on = env_setting("SAGAN_CUDA_FILL_ALLOCATIONS", false, parse_switch);
  return on;
}
}  // namespace

void set_cuda_fill_allocations(bool enabled) { g_fill_allocations.store(enabled ? 1 : 0); }

bool cuda_fill_allocations() {
  const int set = g_fill_allocations.load();
  return set < 0 ? fill_allocations_from_env() : set == 1;
}

void set_cuda_attention_workspace_limit(size_t bytes) {
  g_score_budget.store(bytes == 0 ? kDefaultScoreBudget : bytes);
}
size_t cuda_attention_workspace_limit() { return g_score_budget.load(); }

std::vector<KernelId> parse_declined_kernels(const std::string& text, const std::string& what) {
  std::vector<KernelId> ids;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const size_t a = text.find_first_not_of(" \t", start);
    std::string name = a < end ? text.substr(a, end - a) : std::string();
    name.erase(name.find_last_not_of(" \t") + 1);
    if (!name.empty()) {
      const KernelId id = kernel_id(name, what);
      SAGAN_CHECK(id != KernelId::fill && id != KernelId::copy,
                  "{}: {} cannot be declined: the CPU fallback needs fill and copy", what, name);
      ids.push_back(id);
    }
    start = end + 1;
  }
  return ids;
}

std::vector<KernelId> cuda_declined_kernels() {
  static const std::vector<KernelId> ids =
      env_setting("SAGAN_CUDA_DECLINE", std::vector<KernelId>{}, parse_declined_kernels);
  return ids;
}

}  // namespace sagan

namespace sagan {
namespace {
// Read when a tool starts (core/env_setting.h), not only at first use: a bad
// value is refused before any data is loaded, on a machine with no GPU too.
const EnvSettingCheck check_cuda_settings([] {
  (void)attention_impl_from_env();
  (void)sn_power_impl_from_env();
  (void)deterministic_from_env();
  (void)fill_allocations_from_env();
  (void)cuda_declined_kernels();
});
}  // namespace
}  // namespace sagan
