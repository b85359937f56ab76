// The Launcher the fused kernels' dispatch code takes (see
// kernels/cuda/flash_attention_common.cuh), running kernels on the CPU
// emulator; and a float buffer with NaN canaries on both sides, so that
// writes past either end change a canary and reads past an end bring NaN
// into the results, filled at random by random_guarded_buf. Include after tests/cuda/emu/cuda_emu.h.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace sagan::emutest {

struct EmuLauncher {
  int sms = 4;
  int num_sms() const { return sms; }
  template <class... P, class... A>
  void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    cuda_emu::launch(kernel, grid, block, smem, args...);
  }
  void zero(float* p, size_t n) { std::fill(p, p + n, 0.f); }
};

constexpr uint32_t kCanaryBits = 0x7fc0beefu;
constexpr size_t kGuard = 64;  // floats: keeps data() 16-byte aligned

struct GuardedBuf {
  std::vector<float> mem;
  size_t n;
  explicit GuardedBuf(size_t n_) : mem(n_ + 2 * kGuard), n(n_) {
    float canary;
    std::memcpy(&canary, &kCanaryBits, 4);
    std::fill(mem.begin(), mem.end(), canary);
  }
  float* data() { return mem.data() + kGuard; }
  const float* data() const { return mem.data() + kGuard; }
  float operator[](size_t i) const { return data()[i]; }
  size_t size() const { return n; }
  bool canaries_intact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &mem[i], 4);
      std::memcpy(&b, &mem[kGuard + n + i], 4);
      if (a != kCanaryBits || b != kCanaryBits) return false;
    }
    return true;
  }
};

// n normal floats of standard deviation `scale`, drawn in index order.
inline GuardedBuf random_guarded_buf(size_t n, double scale, std::mt19937& gen) {
  GuardedBuf b(n);
  std::normal_distribution<float> dist(0.f, static_cast<float>(scale));
  for (size_t i = 0; i < n; ++i) b.data()[i] = dist(gen);
  return b;
}

}  // namespace sagan::emutest
