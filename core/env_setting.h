// The default of a process-wide setting from the environment: `parse` of the
// variable's text when it is set and not empty, else `fallback`. parse gets
// what to name in its error ("environment variable NAME") and throws there.
// Callers keep the result in a function-local static, so the variable is read
// once, when the setting is first needed (a throwing parse leaves the static
// unset, so the error repeats at the next use).
#pragma once
#include <cstdlib>
#include <string>

namespace sagan {

template <class T, class Parse>
T env_setting(const char* name, T fallback, Parse&& parse) {
  const char* v = std::getenv(name);
  if (v == nullptr || v[0] == '\0') return fallback;
  return parse(std::string(v), std::string("environment variable ") + name);
}

// The file that reads a setting registers its reader once, as a namespace-
// scope object (`const EnvSettingCheck check_x([] { x_setting(); });`), so
// that a tool refuses a bad value when it starts (check_env_settings)
// rather than at the setting's first use, minutes into a run.
class EnvSettingCheck {
 public:
  explicit EnvSettingCheck(void (*read)());
};

// Reads every registered setting; throws the first one's error.
void check_env_settings();

}  // namespace sagan
