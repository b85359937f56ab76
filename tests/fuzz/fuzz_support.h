// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_<target>.cpp). A parser
// owes bad input a sagan::Error naming the file; every other way out (a
// different exception, a crash, a sanitizer report, a broken promise checked
// with FUZZ_ASSERT) is a finding that libFuzzer stops on and saves.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sagan/core/error.h"

namespace sagan::fuzz {

// Runs `parse`; a clean refusal (sagan::Error) is fine and its message must
// name `name`, which the harness passed as the file name.
template <class F>
void refuse_cleanly(const std::string& name, F&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    if (std::string(e.what()).find(name) == std::string::npos) {
      std::fprintf(stderr, "fuzz: the error does not name the file '%s': %s\n", name.c_str(), e.what());
      std::abort();
    }
  }
}

}  // namespace sagan::fuzz

// A property of a successful parse; aborts (a finding) when it does not hold.
#define FUZZ_ASSERT(cond)                                                                    \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "fuzz: %s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
