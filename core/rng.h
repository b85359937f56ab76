// Seeded random numbers that are identical on every machine: Philox4x32-10
// (a counter-based generator) with Box-Muller normals. State is (seed,
// position = 32-bit words drawn so far), two integers, so checkpoints can
// restore it exactly.
#pragma once
#include <array>
#include <cstdint>

namespace sagan {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t position() const { return pos_; }
  void set_state(uint64_t seed, uint64_t position) {
    seed_ = seed;
    pos_ = position;
    block_valid_ = false;
  }

  uint32_t next_u32();
  double uniform();  // [0, 1), 53 random bits
  double normal();   // N(0, 1)
  // Uniform integer in [0, n), unbiased; n = 0 throws.
  uint64_t below(uint64_t n);

 private:
  uint64_t seed_;
  uint64_t pos_ = 0;  // 32-bit words drawn; block = pos_ / 4
  std::array<uint32_t, 4> block_{};
  bool block_valid_ = false;
};

// Philox4x32-10 block for (counter, key): exposed for tests and for kernels
// that want the same stream on another device.
std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key);

}  // namespace sagan
