// core/reduced_precision.h: bf16 (round to nearest even) and TF32 (round to
// nearest, ties away) conversions on edge cases, and against a slow
// reference that rounds by comparing distances to the two neighbours.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "sagan/core/reduced_precision.h"
#include "tests/support/reference_round.h"

namespace {

using sagan::bf16_bits_rn;
using sagan::round_bf16;
using sagan::round_tf32;
using sagan::tf32_bits_rna;
using sagan::testing::reference_round;

float f(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t u(float x) { return std::bit_cast<uint32_t>(x); }

}  // namespace

TEST_CASE("bf16 rounding: edge cases", "[reduced_precision]") {
  // Exactly representable values pass unchanged.
  for (float x : {0.f, -0.f, 1.f, -2.f, 0.5f, 3.f, 65280.f}) CHECK(round_bf16(x) == x);
  CHECK(std::signbit(round_bf16(-0.f)));
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even -> 1.
  CHECK(round_bf16(1.f + std::ldexp(1.f, -8)) == 1.f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: -> 1 + 2^-6.
  CHECK(round_bf16(1.f + 3 * std::ldexp(1.f, -8)) == 1.f + std::ldexp(1.f, -6));
  // Just above the halfway point rounds up.
  CHECK(round_bf16(f(u(1.f + std::ldexp(1.f, -8)) + 1)) == 1.f + std::ldexp(1.f, -7));
  // Infinities stay; the largest float rounds to infinity; the largest bf16
  // stays.
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(round_bf16(inf) == inf);
  CHECK(round_bf16(-inf) == -inf);
  CHECK(round_bf16(std::numeric_limits<float>::max()) == inf);
  CHECK(round_bf16(-std::numeric_limits<float>::max()) == -inf);
  CHECK(round_bf16(f(0x7f7f0000u)) == f(0x7f7f0000u));
  // NaNs (quiet, signalling, negative, payload only in the dropped bits)
  // become the canonical NaN, never infinity.
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7f80ffffu}) {
    CHECK(bf16_bits_rn(f(nan)) == 0x7fff);
    CHECK(std::isnan(round_bf16(f(nan))));
  }
  // Subnormals round like any other value (no flush to zero).
  CHECK(round_bf16(f(0x00000001u)) == 0.f);
  CHECK(bf16_bits_rn(f(0x00008000u)) == 0x0000);  // halfway, even -> down
  CHECK(bf16_bits_rn(f(0x00018000u)) == 0x0002);  // halfway, odd -> up
  CHECK(bf16_bits_rn(f(0x00008001u)) == 0x0001);
  // Packing: lo in bits 0-15.
  CHECK(sagan::pack_bf16x2_rn(1.f, -2.f) == 0xc0003f80u);
}

TEST_CASE("tf32 rounding: edge cases", "[reduced_precision]") {
  for (float x : {0.f, -0.f, 1.f, -1.5f, 1024.f, 1.f + std::ldexp(1.f, -10)}) CHECK(round_tf32(x) == x);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties away -> up.
  CHECK(round_tf32(1.f + std::ldexp(1.f, -11)) == 1.f + std::ldexp(1.f, -10));
  CHECK(round_tf32(-(1.f + std::ldexp(1.f, -11))) == -(1.f + std::ldexp(1.f, -10)));
  // Just below the halfway point rounds down.
  CHECK(round_tf32(f(u(1.f + std::ldexp(1.f, -11)) - 1)) == 1.f);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(round_tf32(inf) == inf);
  CHECK(round_tf32(-inf) == -inf);
  CHECK(round_tf32(std::numeric_limits<float>::max()) == inf);
  // NaNs keep their upper 19 bits, as the hardware's cvt does: a NaN whose
  // payload is only in the dropped bits becomes infinity.
  for (uint32_t nan : {0x7fc00000u, 0xffc00000u, 0x7f80ffffu}) {
    CHECK(tf32_bits_rna(f(nan)) == (nan & 0xffffe000u));
    CHECK(std::isnan(sagan::tf32_operand_value(tf32_bits_rna(f(nan)))));
  }
  CHECK(tf32_bits_rna(f(0x7f800001u)) == 0x7f800000u);
  CHECK(tf32_bits_rna(f(0xff800fffu)) == 0xff800000u);
  // The tensor core ignores the low 13 bits of an operand register.
  CHECK(sagan::tf32_operand_value(u(1.f + std::ldexp(1.f, -12))) == 1.f);
  CHECK((tf32_bits_rna(3.14159f) & 0x1fffu) == 0u);
}

TEST_CASE("bf16 and tf32 rounding agree with a distance-based reference", "[reduced_precision]") {
  std::mt19937 gen(3);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits(gen);
    // Every fourth value sits exactly on or next to a tie of either format.
    if (i % 4 == 1) b = (b & 0xffff0000u) | 0x8000u;
    if (i % 4 == 2) b = (b & 0xffffe000u) | 0x1000u;
    if (i % 4 == 3) b = ((b & 0xffff0000u) | 0x8000u) + ((i & 8) ? 1u : -1u);
    const float x = f(b);
    if (!std::isfinite(x)) continue;
    ++checked;
    const float rb = reference_round(x, 7, true), rt = reference_round(x, 10, false);
    if (u(round_bf16(x)) != u(rb) || u(round_tf32(x)) != u(rt)) {
      INFO("x bits " << std::hex << b);
      CHECK(u(round_bf16(x)) == u(rb));
      CHECK(u(round_tf32(x)) == u(rt));
    }
  }
  CHECK(checked > 190000);
}

TEST_CASE("bf16 and tf32 relative rounding errors stay within the unit roundoff", "[reduced_precision]") {
  std::mt19937 gen(4);
  std::normal_distribution<float> dist(0.f, 100.f);
  double worst_bf16 = 0, worst_tf32 = 0;
  for (int i = 0; i < 100000; ++i) {
    const float x = dist(gen);
    if (x == 0.f) continue;
    worst_bf16 = std::max(worst_bf16, std::abs(double(round_bf16(x)) - x) / std::abs(double(x)));
    worst_tf32 = std::max(worst_tf32, std::abs(double(round_tf32(x)) - x) / std::abs(double(x)));
  }
  CHECK(worst_bf16 <= std::ldexp(1.0, -8));
  CHECK(worst_bf16 > std::ldexp(1.0, -9));  // the bound is tight, not vacuous
  CHECK(worst_tf32 <= std::ldexp(1.0, -11));
  CHECK(worst_tf32 > std::ldexp(1.0, -12));
}
