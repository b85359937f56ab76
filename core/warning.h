// Warnings from library code (a metric computed on too few samples, a
// non-PSD covariance): one process-wide handler, stderr by default, so a
// program that embeds the engine decides where they go. Errors are
// exceptions (core/error.h); a warning never stops anything.
#pragma once
#include <functional>
#include <string>

namespace sagan {

using WarningHandler = std::function<void(const std::string& text)>;

// Hands `text` to the handler (by default: "warning: <text>" on stderr).
void warn(const std::string& text);
// Installs `handler` (null: the default) and returns the one it replaces.
// Not to be called while other threads may warn.
WarningHandler set_warning_handler(WarningHandler handler);

}  // namespace sagan
