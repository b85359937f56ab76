// The tensor cores' reduced-precision float formats, rounded on the CPU bit
// for bit as the GPU's conversion instructions round them. The CPU emulator
// of the tensor-core kernels (tests/cuda/emu) converts through these, so its
// results carry the same input rounding as the GPU's; a mixed-precision
// training step can use them to predict or check bf16 numerics on the CPU.
//
//   bfloat16  1 sign, 8 exponent, 7 mantissa bits: the upper half of a
//             float32. cvt.rn.bf16.f32: round to nearest, ties to even;
//             infinities stay infinite, a finite value past the largest
//             bf16 rounds to infinity, every NaN becomes the canonical NaN
//             0x7FFF (as CUDA's own host-side __float2bfloat16_rn does).
//   TF32      1 sign, 8 exponent, 10 mantissa bits, held in a 32-bit
//             register whose low 13 bits are zero. cvt.rna.tf32.f32: round
//             to nearest, ties away from zero; infinities and NaNs only
//             lose their low 13 bits (a NaN with a payload only there
//             becomes infinity, tf32_bits_rna). The tensor cores ignore
//             the low 13 bits of a .tf32 operand, so a float passed
//             without conversion is truncated.
// Unit roundoff (half the spacing relative to the value): bf16 2^-8 = 3.9e-3,
// TF32 2^-11 = 4.9e-4, float32 2^-24 = 6.0e-8.
#pragma once
#include <bit>
#include <cstdint>

namespace sagan {

inline bool float_bits_is_nan(uint32_t bits) { return (bits & 0x7fffffffu) > 0x7f800000u; }

// ---- bfloat16 ----

inline uint16_t bf16_bits_rn(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if (float_bits_is_nan(bits)) return 0x7fff;
  // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry out
  // of the mantissa bumps the exponent (up to infinity), as it should.
  const uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7fffu + lsb) >> 16);
}

inline float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// x rounded to the nearest bfloat16 (ties to even), as a float.
inline float round_bf16(float x) { return bf16_to_float(bf16_bits_rn(x)); }

// The bf16x2 register cvt.rn.bf16x2.f32 d, hi, lo writes: lo in bits 0-15.
inline uint32_t pack_bf16x2_rn(float lo, float hi) {
  return static_cast<uint32_t>(bf16_bits_rn(lo)) | (static_cast<uint32_t>(bf16_bits_rn(hi)) << 16);
}

// ---- TF32 ----

// cvt.rna.tf32.f32 as the hardware does it (sm_86's SASS: FSETP |x| >= inf,
// the add skipped for inf and NaN, then LOP3 & 0xffffe000): finite values get
// half of the dropped range added to the magnitude, then truncated, so ties go
// away from zero; infinity and NaN only lose their low 13 bits, which turns a
// NaN whose payload sits only there (0x7f800001) into infinity. PTX calls the
// tf32 layout implementation-defined; [warp_mma] checks this on the device.
inline uint32_t tf32_bits_rna(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7f800000u) == 0x7f800000u) return bits & 0xffffe000u;
  return (bits + 0x1000u) & 0xffffe000u;
}

// What a tensor core reads from a .tf32 operand register: the low 13 bits
// ignored.
inline float tf32_operand_value(uint32_t reg) { return std::bit_cast<float>(reg & 0xffffe000u); }

// x rounded to the nearest TF32 (ties away from zero), as a float.
inline float round_tf32(float x) { return std::bit_cast<float>(tf32_bits_rna(x)); }

}  // namespace sagan
