// Small checks on text that several readers share.
#pragma once
#include <algorithm>
#include <string_view>

namespace sagan {

// Non-empty and only the digits 0-9 (no sign, no spaces): a count or an
// index as the engine writes them in names and metadata.
inline bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace sagan
