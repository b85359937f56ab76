#include "sagan/core/env_setting.h"

#include <vector>

namespace sagan {

namespace {
// A function-local static: registrations run during static initialisation,
// in an order across files that nothing fixes.
std::vector<void (*)()>& readers() {
  static std::vector<void (*)()> r;
  return r;
}
}  // namespace

EnvSettingCheck::EnvSettingCheck(void (*read)()) { readers().push_back(read); }

void check_env_settings() {
  for (void (*read)() : readers()) read();
}

}  // namespace sagan
