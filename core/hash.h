// FNV-1a, 64 bits: a fixed, portable hash of bytes (the same value on every
// rank and machine), for comparing what ranks hold, cache keys and file
// fingerprints. Not for security.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sagan {

inline constexpr uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;

// Continues from h, so that data can be hashed piece by piece.
inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnv1aOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace sagan
