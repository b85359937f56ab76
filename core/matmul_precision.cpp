// The process-wide matmul precision (see matmul_precision.h).
#include "sagan/core/matmul_precision.h"

#include <atomic>

#include "sagan/core/env_setting.h"
#include "sagan/core/error.h"

namespace sagan {

namespace {
std::atomic<int> g_precision{-1};  // -1: the environment decides
}  // namespace

const char* matmul_precision_name(MatmulPrecision p) {
  switch (p) {
    case MatmulPrecision::Fp32:
      return "fp32";
    case MatmulPrecision::Tf32:
      return "tf32";
    case MatmulPrecision::Bf16:
      return "bf16";
  }
  return "?";
}

MatmulPrecision parse_matmul_precision(const std::string& text, const std::string& what) {
  for (MatmulPrecision p : {MatmulPrecision::Fp32, MatmulPrecision::Tf32, MatmulPrecision::Bf16})
    if (text == matmul_precision_name(p)) return p;
  SAGAN_FAIL("{}: invalid precision '{}' (expected 'fp32', 'tf32' or 'bf16')", what, text);
}

namespace {
MatmulPrecision precision_from_env() {
  static const MatmulPrecision p = env_setting("SAGAN_MATMUL_PRECISION", MatmulPrecision::Fp32, parse_matmul_precision);
  return p;
}
const EnvSettingCheck check_precision_setting([] { (void)precision_from_env(); });
}  // namespace

void set_matmul_precision(MatmulPrecision p) { g_precision.store(static_cast<int>(p)); }

MatmulPrecision matmul_precision() {
  const int set = g_precision.load();
  return set < 0 ? precision_from_env() : static_cast<MatmulPrecision>(set);
}

}  // namespace sagan
