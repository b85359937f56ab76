// Command-line numbers of the bench_* executables: decimal integers within
// range, or the usage error (exit 2). atoi read "abc" as 0, which the
// benches then clamped or ran with silently (a PyTorch twin given the same
// text failed after its warm-up instead).
#pragma once
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace sagan::bench {

// `text` as an integer in [lo, hi]; else "<tool>: <flag>: '<text>' is not an
// integer in [lo, hi]" on stderr and exit 2.
inline long long int_arg(const char* tool, const std::string& flag, const std::string& text, long long lo,
                         long long hi = 1LL << 40) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || n < lo || n > hi) {
    std::fprintf(stderr, "%s: %s: '%s' is not an integer in [%lld, %lld]\n", tool, flag.c_str(), text.c_str(), lo, hi);
    std::exit(2);
  }
  return n;
}

// "64,256": each part as int_arg.
inline std::vector<int> int_list_arg(const char* tool, const std::string& flag, const std::string& text, int lo,
                                     int hi) {
  std::vector<int> out;
  size_t at = 0;
  for (;;) {
    const size_t comma = text.find(',', at);
    out.push_back(static_cast<int>(int_arg(tool, flag, text.substr(at, comma - at), lo, hi)));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

}  // namespace sagan::bench
