// Shared pieces of the command-line tools: error reporting with exit codes.
#pragma once
#include <functional>
#include <string>

namespace sagan::cli {

// Runs body, turning exceptions into "tool: error: message" on stderr and a
// non-zero exit code (1 for engine errors, 2 for unexpected ones).
int guarded_main(const char* tool, const std::function<int()>& body);

}  // namespace sagan::cli
