#include "tools/cli_common.h"

#include <fmt/format.h>

#include <exception>

#include "core/error.h"

namespace sagan::cli {

int guarded_main(const char* tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const sagan::Error& e) {
    fmt::print(stderr, "{}: error: {}\n", tool, e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: unexpected error: {}\n", tool, e.what());
    return 2;
  }
}

}  // namespace sagan::cli
