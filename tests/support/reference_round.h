// A slow, independent reference for bf16 and TF32 rounding: x rounded to
// `keep` mantissa bits by comparing, in double arithmetic, its distances to
// the two candidates (the truncation, and the next value up in magnitude).
// ties_even: a tie goes to the candidate whose last kept bit is even, else
// away from zero. For finite x; the engine's own conversions
// (core/reduced_precision.h) are checked against it.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace sagan::testing {

inline float reference_round(float x, int keep, bool ties_even) {
  const auto f = [](uint32_t b) { return std::bit_cast<float>(b); };
  const int drop = 23 - keep;
  const uint32_t mask = ~((1u << drop) - 1u);
  const uint32_t lo = std::bit_cast<uint32_t>(x) & mask;  // toward zero
  const uint32_t hi = lo + (1u << drop);                  // away from zero (may reach infinity)
  const double dlo = std::abs(double(x) - double(f(lo)));
  const double dhi = std::isinf(f(hi)) ? std::abs(double(x) - std::ldexp(std::copysign(1.0, x), 128))
                                       : std::abs(double(x) - double(f(hi)));
  if (dlo < dhi) return f(lo);
  if (dhi < dlo) return f(hi);
  if (!ties_even) return f(hi);
  return ((lo >> drop) & 1u) ? f(hi) : f(lo);
}

// bf16: 7 mantissa bits, ties to even.
inline float reference_bf16(float x) { return reference_round(x, 7, true); }

}  // namespace sagan::testing
