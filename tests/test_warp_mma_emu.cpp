// The emulated tensor-core instructions (kernels/cuda/warp_mma.cuh run on
// tests/cuda/emu): each lane builds its fragments from whole matrices with
// the PTX ISA's fragment formulas (written out here independently of the
// emulator), the warp executes the instruction, and the lanes' results,
// placed back by the same formulas, must equal a plain CPU matrix product
// of the rounded operands. A wrong layout anywhere gives O(1) errors. Also:
// ldmatrix's lane/row mapping, cp.async's deferred completion and zero fill,
// and that divergent warp-collective calls are reported.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "sagan/core/reduced_precision.h"

// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/warp_mma.cuh"
// clang-format on

namespace {

namespace fz = sagan::fused;

// ---- fragment formulas (PTX ISA 9.7.14.5.7 / .8), g = lane/4, t = lane%4 ----
// m16n8k8 .tf32:  A ai: row g (+8 for a1, a3), col t (+4 for a2, a3)
//                 B bi: row t (+4 for b1), col g
// m16n8k16 .bf16: A ai (i = 0..7, two per register): row g (+8 for
//                 i in {2,3,6,7}), col 2t + (i & 1) (+8 for i >= 4)
//                 B bi (i = 0..3): row 2t + (i & 1) (+8 for i >= 2), col g
// C/D ci: row g (+8 for c2, c3), col 2t + (i & 1).

// One warp (or two: lanes of warp w use matrices w); M is row-major.
__global__ void mma_tf32_kernel(const float* A, const float* B, const float* C, float* D, int raw_operands) {
  const int lane = static_cast<int>(threadIdx.x) % 32, w = static_cast<int>(threadIdx.x) / 32;
  const int g = lane / 4, t = lane % 4;
  const float* a = A + w * 16 * 8;
  const float* b = B + w * 8 * 8;
  const float* c = C + w * 16 * 8;
  float* d = D + w * 16 * 8;
  auto cv = [&](float x) {
    if (raw_operands) {
      uint32_t u;
      std::memcpy(&u, &x, 4);
      return u;
    }
    return fz::f32_to_tf32(x);
  };
  const uint32_t af[4] = {cv(a[g * 8 + t]), cv(a[(g + 8) * 8 + t]), cv(a[g * 8 + t + 4]), cv(a[(g + 8) * 8 + t + 4])};
  const uint32_t bf[2] = {cv(b[t * 8 + g]), cv(b[(t + 4) * 8 + g])};
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  fz::mma_tf32_16x8x8(acc, af, bf);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

__global__ void mma_bf16_kernel(const float* A, const float* B, const float* C, float* D) {
  const int lane = static_cast<int>(threadIdx.x) % 32, w = static_cast<int>(threadIdx.x) / 32;
  const int g = lane / 4, t = lane % 4;
  const float* a = A + w * 16 * 16;
  const float* b = B + w * 16 * 8;
  const float* c = C + w * 16 * 8;
  float* d = D + w * 16 * 8;
  auto arow = [&](int i) { return g + ((i & 2) ? 8 : 0); };
  auto acol = [&](int i) { return 2 * t + (i & 1) + (i >= 4 ? 8 : 0); };
  auto brow = [&](int i) { return 2 * t + (i & 1) + (i >= 2 ? 8 : 0); };
  uint32_t af[4], bf[2];
  for (int r = 0; r < 4; ++r)
    af[r] = fz::pack_bf16x2(a[arow(2 * r) * 16 + acol(2 * r)], a[arow(2 * r + 1) * 16 + acol(2 * r + 1)]);
  for (int r = 0; r < 2; ++r) bf[r] = fz::pack_bf16x2(b[brow(2 * r) * 8 + g], b[brow(2 * r + 1) * 8 + g]);
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  fz::mma_bf16_16x8x16(acc, af, bf);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

std::vector<float> randn(size_t n, std::mt19937& gen) {
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// D = round(A) round(B) + C in double; |emulated - ref| must be within a few
// float32 roundings of the terms' magnitude (layout errors are O(1)).
void check_product(const std::vector<float>& A, const std::vector<float>& B, const std::vector<float>& C,
                   const std::vector<float>& D, int M, int N, int K, int warps, float (*round)(float)) {
  int bad = 0;
  for (int w = 0; w < warps; ++w)
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double ref = C[w * M * N + i * N + j], mag = std::abs(ref);
        for (int k = 0; k < K; ++k) {
          const double p = double(round(A[w * M * K + i * K + k])) * double(round(B[w * K * N + k * N + j]));
          ref += p;
          mag += std::abs(p);
        }
        const double got = D[w * M * N + i * N + j];
        if (!(std::abs(got - ref) <= 4e-7 * mag)) ++bad;
      }
  CHECK(bad == 0);
}

float tf32_truncate(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return sagan::tf32_operand_value(u);
}

}  // namespace

TEST_CASE("emulated mma.m16n8k8 tf32 equals the CPU product of tf32-rounded operands", "[warp_mma][cuda_emu]") {
  std::mt19937 gen(1);
  for (int warps : {1, 2}) {
    const auto A = randn(size_t(warps) * 16 * 8, gen), B = randn(size_t(warps) * 8 * 8, gen),
               C = randn(size_t(warps) * 16 * 8, gen);
    std::vector<float> D(C.size(), NAN);
    cuda_emu::launch(mma_tf32_kernel, dim3(1), dim3(32 * warps), 0, A.data(), B.data(), C.data(), D.data(), 0);
    check_product(A, B, C, D, 16, 8, 8, warps, sagan::round_tf32);
    // Raw float32 bits as .tf32 operands: the low 13 bits are ignored
    // (truncation, not rounding); check that this differs from rounding.
    std::vector<float> Dr(C.size(), NAN);
    cuda_emu::launch(mma_tf32_kernel, dim3(1), dim3(32 * warps), 0, A.data(), B.data(), C.data(), Dr.data(), 1);
    check_product(A, B, C, Dr, 16, 8, 8, warps, tf32_truncate);
    CHECK(Dr != D);
  }
}

TEST_CASE("emulated mma.m16n8k16 bf16 equals the CPU product of bf16-rounded operands", "[warp_mma][cuda_emu]") {
  std::mt19937 gen(2);
  for (int warps : {1, 2}) {
    const auto A = randn(size_t(warps) * 16 * 16, gen), B = randn(size_t(warps) * 16 * 8, gen),
               C = randn(size_t(warps) * 16 * 8, gen);
    std::vector<float> D(C.size(), NAN);
    cuda_emu::launch(mma_bf16_kernel, dim3(1), dim3(32 * warps), 0, A.data(), B.data(), C.data(), D.data());
    check_product(A, B, C, D, 16, 8, 16, warps, sagan::round_bf16);
  }
}

namespace {
// Shared memory holds 4 matrices of 8 rows x 4 words, row j of matrix m at
// word offset (m * 8 + j) * 8 (rows padded to 8 words); the lanes pass
// rows in the PTX order and write what they receive.
__global__ void ldmatrix_kernel(uint32_t* out) {
  SAGAN_DYNAMIC_SMEM(float, smem);
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = lane; i < 4 * 8 * 8; i += 32) {
    const uint32_t v = 0x10000u * uint32_t(i / 8) + uint32_t(i % 8);  // (matrix*8 + row) << 16 | word
    std::memcpy(&smem[i], &v, 4);
  }
  __syncwarp();
  uint32_t r[4];
  fz::ldmatrix_x4(r, smem + (lane / 8 * 8 + lane % 8) * 8);
  for (int j = 0; j < 4; ++j) out[lane * 4 + j] = r[j];
}

// Two warps read each other's slots, meet at a shuffle, then overwrite their
// own slots with no barrier first: a write-after-read race between warps.
__global__ void reuse_without_barrier_kernel(float* out) {
  SAGAN_DYNAMIC_SMEM(float, smem);
  const int t = static_cast<int>(threadIdx.x);
  smem[t] = float(t);
  __syncthreads();
  float v = smem[(t + 32) % 64];
  v = __shfl_xor_sync(0xffffffffu, v, 0);
  smem[t] = -1.f;  // missing __syncthreads() before this
  out[t] = v;
}

__global__ void cp_async_kernel(const float* src, float* out) {
  SAGAN_DYNAMIC_SMEM(float, smem);
  const int lane = static_cast<int>(threadIdx.x);
  // Group 0: 16 bytes; group 1: 8 of 16 bytes (the rest zero-filled).
  fz::cp_async16(smem + 8 * lane, src + 8 * lane, 16);
  fz::cp_async_commit();
  fz::cp_async16(smem + 8 * lane + 4, src + 8 * lane + 4, 8);
  fz::cp_async_commit();
  out[lane * 24 + 0] = smem[8 * lane];  // before any wait: the old bytes
  fz::cp_async_wait<1>();               // group 0 has landed, group 1 may not
  for (int e = 0; e < 8; ++e) out[lane * 24 + 8 + e] = smem[8 * lane + e];
  fz::cp_async_wait<0>();
  for (int e = 0; e < 8; ++e) out[lane * 24 + 16 + e] = smem[8 * lane + e];
}

__global__ void divergent_kernel(float* out) {
  SAGAN_DYNAMIC_SMEM(float, smem);
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = lane; i < 64; i += 32) smem[i] = 0.f;
  __syncwarp();
  if (lane < 16) {
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float d[4] = {0, 0, 0, 0};
    fz::mma_tf32_16x8x8(d, a, b);
    out[lane] = d[0];
  } else {
    uint32_t r[4];
    fz::ldmatrix_x4(r, smem);
    out[lane] = float(r[0]);
  }
}
}  // namespace

TEST_CASE("emulated ldmatrix.x4 hands lane l word l%4 of row l/4 of each matrix", "[warp_mma][cuda_emu]") {
  std::vector<uint32_t> out(32 * 4, 0xdeadbeefu);
  cuda_emu::launch(ldmatrix_kernel, dim3(1), dim3(32), 4 * 8 * 8 * sizeof(float), out.data());
  for (int lane = 0; lane < 32; ++lane)
    for (int j = 0; j < 4; ++j) {
      INFO("lane " << lane << " matrix " << j);
      CHECK(out[lane * 4 + j] == 0x10000u * uint32_t(j * 8 + lane / 4) + uint32_t(lane % 4));
    }
}

TEST_CASE("emulated cp.async lands at its wait_group, zero-fills, and checks alignment", "[warp_mma][cuda_emu]") {
  std::vector<float> src(32 * 8);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i) + 0.5f;
  std::vector<float> out(32 * 24, 0.f);
  {
    cuda_emu::ScheduleScope lockstep(cuda_emu::Schedule::Lockstep);
    cuda_emu::launch(cp_async_kernel, dim3(1), dim3(32), 32 * 8 * sizeof(float), src.data(), out.data());
  }
  for (int lane = 0; lane < 32; ++lane) {
    INFO("lane " << lane);
    CHECK(std::isnan(out[lane * 24]));  // shared memory starts as NaN bytes
    for (int e = 0; e < 4; ++e) CHECK(out[lane * 24 + 8 + e] == src[8 * lane + e]);
    for (int e = 4; e < 8; ++e) CHECK(std::isnan(out[lane * 24 + 8 + e]));
    for (int e = 0; e < 6; ++e) CHECK(out[lane * 24 + 16 + e] == src[8 * lane + e]);
    CHECK(out[lane * 24 + 22] == 0.f);
    CHECK(out[lane * 24 + 23] == 0.f);
  }
  const cuda_emu::Schedule before = cuda_emu::schedule();
  {
    // The run-ahead schedule lands copies at issue, the other end of what
    // the GPU may do: even the read before any wait sees the new bytes.
    cuda_emu::ScheduleScope run_ahead(cuda_emu::Schedule::RunAhead);
    cuda_emu::launch(cp_async_kernel, dim3(1), dim3(32), 32 * 8 * sizeof(float), src.data(), out.data());
    for (int lane = 0; lane < 32; ++lane) {
      INFO("lane " << lane << ", run-ahead schedule");
      CHECK(out[lane * 24] == src[8 * lane]);
      for (int e = 0; e < 6; ++e) CHECK(out[lane * 24 + 8 + e] == src[8 * lane + e]);
      CHECK(out[lane * 24 + 14] == 0.f);
    }
  }
  CHECK(cuda_emu::schedule() == before);  // the scope restored the schedule
  // A 16-byte copy from a 4-byte-aligned source is an error.
  CHECK_THROWS_WITH(
      cuda_emu::launch(cp_async_kernel, dim3(1), dim3(32), 32 * 8 * sizeof(float), src.data() + 1, out.data()),
      Catch::Contains("misaligned"));
}

TEST_CASE("the run-ahead schedule shows a race between warps that lockstep hides", "[warp_mma][cuda_emu]") {
  std::vector<float> out(64);
  auto wrong_reads = [&](cuda_emu::Schedule mode) {
    cuda_emu::ScheduleScope scope(mode);
    cuda_emu::launch(reuse_without_barrier_kernel, dim3(1), dim3(64), 64 * sizeof(float), out.data());
    int wrong = 0;
    for (int t = 0; t < 64; ++t) wrong += out[t] != float((t + 32) % 64);
    return wrong;
  };
  CHECK(wrong_reads(cuda_emu::Schedule::Lockstep) == 0);
  CHECK(wrong_reads(cuda_emu::Schedule::RunAhead) == 32);  // the warp that ran second read -1
}

TEST_CASE("emulated warp collectives report divergent lanes", "[warp_mma][cuda_emu]") {
  std::vector<float> out(32);
  CHECK_THROWS_WITH(cuda_emu::launch(divergent_kernel, dim3(1), dim3(32), 64 * sizeof(float), out.data()),
                    Catch::Contains("different warp-collective"));
}
