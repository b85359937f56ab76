#include "sagan/core/warning.h"

#include <cstdio>

namespace sagan {

namespace {
WarningHandler& handler() {
  static WarningHandler h;  // function-local: usable from any static initialiser
  return h;
}
}  // namespace

void warn(const std::string& text) {
  if (text.empty()) return;
  if (handler()) {
    handler()(text);
    return;
  }
  std::fprintf(stderr, "warning: %s\n", text.c_str());
}

WarningHandler set_warning_handler(WarningHandler h) {
  WarningHandler old = std::move(handler());
  handler() = std::move(h);
  return old;
}

}  // namespace sagan
