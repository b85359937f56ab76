// Warp-collective tensor-core instructions and cp.async for the CPU emulator
// (included by cuda_emu.h): exactly the instructions the wrappers in
// kernels/cuda/warp_mma.cuh issue, with the operand layouts of the PTX ISA
// ("Matrix Fragments for mma.m16n8k8 / mma.m16n8k16", "ldmatrix").
//
// A warp-collective call deposits the lane's operands, waits until all 32
// lanes of its warp have arrived (a warp barrier) and then reads the other
// lanes' operands, so each lane computes its own part of the result from
// the whole warp's fragments, as the hardware does. Lanes that reach
// different collectives (a divergent mma) are an error. The deposits
// alternate between two slot sets: a lane cannot reuse a set before every
// lane of its warp has passed the next barrier, i.e. finished reading.
//
// Numerics: .tf32 operands lose their low 13 bits and .bf16 operands are
// read as the upper halves of floats, exactly as the tensor cores read them
// (the conversions that produce them are core/reduced_precision.h, the same
// rounding as cvt.rna.tf32.f32 and cvt.rn.bf16x2.f32). Products of such
// operands are exact in float32; the emulator adds them and C in double and
// rounds once, while the hardware's adder may truncate intermediate sums:
// results may differ from a GPU's in the last bits of the accumulation, not
// in the operands.
//
// cp.async: a copy is recorded when issued and performed at the
// cp.async.wait_group that covers its group (per thread, as on the GPU), so
// shared memory read before the wait still holds the old bytes (NaN at
// first) and a missing wait shows as a failure. Zero fill for src_size <
// cp_size, and alignment and range checks (dynamic shared memory only) as
// PTX requires them.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "sagan/core/reduced_precision.h"

namespace cuda_emu {

enum CollOp : uint32_t { kOpMmaTf32 = 1, kOpMmaBf16 = 2, kOpLdmatrixX4 = 3 };

// Deposits n words for this lane and waits for the warp; returns the warp's
// deposits, lane l's words at [l * Scheduler::kCollWords].
inline const uint32_t* warp_collective(uint32_t op, const uint32_t* words, int n) {
  Scheduler& s = sched();
  const int t = linear_tid();
  const size_t nthreads = s.fibers.size();
  const uint32_t count = s.coll_count[t]++;
  const size_t set = count & 1u;
  std::memcpy(&s.coll_words[(set * nthreads + t) * Scheduler::kCollWords], words, sizeof(uint32_t) * n);
  // The opcode and the lane's collective count must match across the warp.
  const uint32_t tag = op | (count << 4);
  s.coll_op[set * nthreads + t] = tag;
  yield(Wait::Warp);
  const int base = t - t % kWarp;
  for (int l = 0; l < kWarp; ++l)
    if (s.coll_op[set * nthreads + base + l] != tag)
      throw std::runtime_error("cuda_emu: lanes of warp " + std::to_string(base / kWarp) +
                               " reached different warp-collective instructions (divergent mma/ldmatrix)");
  return &s.coll_words[(set * nthreads + base) * Scheduler::kCollWords];
}

inline uint32_t lane_id() { return static_cast<uint32_t>(linear_tid() % kWarp); }

inline uint32_t float_word(float x) {
  uint32_t w;
  std::memcpy(&w, &x, 4);
  return w;
}

// d = a b + c, m16n8k8, A row-major .tf32, B column-major .tf32, C/D .f32.
//   A (16x8): a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
//   B (8x8):  b0 (k t, n g), b1 (k t+4, n g)
//   C/D:      c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
// with g = lane / 4 (groupID), t = lane % 4 (threadID_in_group).
inline void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
  constexpr int W = Scheduler::kCollWords;
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  const uint32_t* all = warp_collective(kOpMmaTf32, mine, 6);
  auto A = [&](int r, int k) {
    return double(sagan::tf32_operand_value(all[((r % 8) * 4 + k % 4) * W + r / 8 + 2 * (k / 4)]));
  };
  auto B = [&](int k, int n) { return double(sagan::tf32_operand_value(all[(n * 4 + k % 4) * W + 4 + k / 4])); };
  const int lane = static_cast<int>(lane_id()), g = lane / 4, tg = lane % 4;
  float out[4];
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i / 2), col = 2 * tg + i % 2;
    double acc = c[i];
    for (int k = 0; k < 8; ++k) acc += A(row, k) * B(k, col);
    out[i] = static_cast<float>(acc);
  }
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// d = a b + c, m16n8k16, .bf16 operands (two per register, the lower column
// or row index in bits 0-15), C/D .f32.
//   A (16x16): reg0 (g, 2t..2t+1), reg1 (g+8, 2t..2t+1),
//              reg2 (g, 2t+8..2t+9), reg3 (g+8, 2t+8..2t+9)
//   B (16x8):  reg0 (k 2t..2t+1, n g), reg1 (k 2t+8..2t+9, n g)
//   C/D as for m16n8k8.
inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
  constexpr int W = Scheduler::kCollWords;
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  const uint32_t* all = warp_collective(kOpMmaBf16, mine, 6);
  auto half = [](uint32_t reg, int hi) {
    return double(sagan::bf16_to_float(uint16_t(hi ? reg >> 16 : reg & 0xffffu)));
  };
  auto A = [&](int r, int k) { return half(all[((r % 8) * 4 + (k % 8) / 2) * W + r / 8 + 2 * (k / 8)], k % 2); };
  auto B = [&](int k, int n) { return half(all[(n * 4 + (k % 8) / 2) * W + 4 + k / 8], k % 2); };
  const int lane = static_cast<int>(lane_id()), g = lane / 4, tg = lane % 4;
  float out[4];
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i / 2), col = 2 * tg + i % 2;
    double acc = c[i];
    for (int k = 0; k < 16; ++k) acc += A(row, k) * B(k, col);
    out[i] = static_cast<float>(acc);
  }
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// The dynamic shared memory range check used by ldmatrix and cp.async.
inline void check_smem(const void* p, size_t bytes, size_t align, const char* what) {
  const Scheduler& s = sched();
  const auto a = reinterpret_cast<uintptr_t>(p), lo = reinterpret_cast<uintptr_t>(s.dyn_smem.data());
  if (a % align != 0) throw std::runtime_error(std::string("cuda_emu: ") + what + ": misaligned shared-memory address");
  if (a < lo || a + bytes > lo + s.dyn_smem_bytes)
    throw std::runtime_error(std::string("cuda_emu: ") + what + ": address outside the block's dynamic shared memory");
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16: lanes 8j..8j+7 give the row
// addresses (16 bytes each) of matrix j; lane l receives in r[j] the 32-bit
// word l % 4 of row l / 4 of matrix j (b16 elements 2(l%4), 2(l%4)+1).
inline void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  constexpr int W = Scheduler::kCollWords;
  check_smem(row, 16, 16, "ldmatrix");
  uint64_t addr = reinterpret_cast<uintptr_t>(row);
  uint32_t mine[2];
  std::memcpy(mine, &addr, 8);
  const uint32_t* all = warp_collective(kOpLdmatrixX4, mine, 2);
  const int lane = static_cast<int>(lane_id());
  for (int j = 0; j < 4; ++j) {
    uint64_t src;
    std::memcpy(&src, &all[(8 * j + lane / 4) * W], 8);
    std::memcpy(&r[j], reinterpret_cast<const unsigned char*>(src) + 4 * (lane % 4), 4);
  }
}

inline void land_copy(void* dst, const void* src, int cp_size, int src_size) {
  std::memcpy(dst, src, size_t(src_size));
  std::memset(static_cast<unsigned char*>(dst) + src_size, 0, size_t(cp_size - src_size));
}

// cp.async.{ca,cg}.shared.global [dst], [src], cp_size, src_size.
inline void cp_async(void* dst, const void* src, int cp_size, int src_size) {
  Scheduler& s = sched();
  if (cp_size != 4 && cp_size != 8 && cp_size != 16) throw std::runtime_error("cuda_emu: cp.async: bad copy size");
  if (src_size < 0 || src_size > cp_size) throw std::runtime_error("cuda_emu: cp.async: src_size out of range");
  check_smem(dst, size_t(cp_size), size_t(cp_size), "cp.async destination");
  if (reinterpret_cast<uintptr_t>(src) % cp_size != 0)
    throw std::runtime_error("cuda_emu: cp.async: misaligned global source address");
  if (schedule() == Schedule::RunAhead)  // copies land at issue
    land_copy(dst, src, cp_size, src_size);
  else
    s.copies[linear_tid()].push_back({dst, src, cp_size, src_size, -1});
}

inline void cp_async_commit() {
  Scheduler& s = sched();
  const int t = linear_tid();
  for (auto& c : s.copies[t])
    if (c.group < 0) c.group = s.groups_committed[t];
  ++s.groups_committed[t];
}

// cp.async.wait_group n: every committed group but the newest n completes.
inline void cp_async_wait(int n) {
  Scheduler& s = sched();
  const int t = linear_tid();
  const int limit = s.groups_committed[t] - n;
  auto& list = s.copies[t];
  size_t keep = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& c = list[i];
    if (c.group >= 0 && c.group < limit) {
      land_copy(c.dst, c.src, c.cp_size, c.src_size);
    } else {
      list[keep++] = c;
    }
  }
  list.resize(keep);
}

}  // namespace cuda_emu
