// FNV-1a, 64 bits: a fixed, portable hash of bytes (the same value on every
// rank and machine), for comparing what ranks hold, cache keys and file
// fingerprints; and splitmix64's mix of one word. Not for security.
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

// splitmix64's step: a bijective 64-bit mix, for deriving well-separated
// seeds from small or adjacent ones (the data order's streams, the latent
// batches of sagan-class-diversity).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace sagan
