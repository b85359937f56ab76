// Small checks on text that several readers share.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string_view>

namespace sagan {

// Non-empty and only the digits 0-9 (no sign, no spaces): a count or an
// index as the engine writes them in names and metadata.
inline bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Well-formed UTF-8 (no stray continuation bytes, no truncated or overlong
// sequences, no surrogates, nothing past U+10FFFF): what JSON text such as
// config.json can hold.
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || s.size() - i <= static_cast<size_t>(n)) return false;  // a bad lead byte, or cut short
    uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k <= n; ++k) {
      const unsigned char t = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((t >> 6) != 0x2) return false;
      cp = (cp << 6) | (t & 0x3F);
    }
    const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

}  // namespace sagan
