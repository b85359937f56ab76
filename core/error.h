// Errors: every failure in the engine is a sagan::Error whose message names
// the op (or file, or option) and what is wrong. Nothing aborts the process.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace sagan {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// SAGAN_CHECK(cond, "op: fmt {}", args...) throws sagan::Error when cond is false.
#define SAGAN_CHECK(cond, ...)                                     \
  do {                                                             \
    if (!(cond)) throw ::sagan::Error(::fmt::format(__VA_ARGS__)); \
  } while (0)

#define SAGAN_FAIL(...) throw ::sagan::Error(::fmt::format(__VA_ARGS__))

}  // namespace sagan
