// The tensor-core instruction wrappers (kernels/cuda/warp_mma.cuh) on the
// GPU against what the CPU emulator assumes (tests/cuda/emu/cuda_emu_mma.h,
// core/reduced_precision.h): the mma fragment layouts (a wrong layout gives
// O(1) errors), the operand rounding of cvt.rna.tf32.f32 and
// cvt.rn.bf16x2.f32 bit for bit (ties, infinities, NaN, subnormals), and
// ldmatrix's lane/row mapping. The first thing to run on a new device: the
// emulated tests of the tensor-core attention kernels are only as good as
// these assumptions. Skips without a device.
#include <cuda_runtime.h>
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "sagan/core/reduced_precision.h"
#include "tests/cuda/raw_cuda.h"
#include "tests/cuda/warp_mma_probe.h"

namespace {

using namespace sagan::cudatest;

template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n;
  explicit DevBuf(size_t n_) : n(n_) { REQUIRE(cudaMalloc(&p, n * sizeof(T)) == cudaSuccess); }
  explicit DevBuf(const std::vector<T>& h) : DevBuf(h.size()) {
    REQUIRE(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  std::vector<T> host() const {
    std::vector<T> h(n);
    REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }
};

std::vector<float> randn(size_t n, std::mt19937& gen) {
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// max over elements of |gpu - ref| / sum |terms|, ref = the double product
// of the rounded operands plus C (what the emulator computes).
double product_error(const std::vector<float>& A, const std::vector<float>& B, const std::vector<float>& C,
                     const std::vector<float>& D, int M, int N, int K, int warps, float (*round)(float)) {
  double worst = 0;
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
        if (!std::isfinite(got)) return INFINITY;
        worst = std::max(worst, std::abs(got - ref) / mag);
      }
  return worst;
}

}  // namespace

// Bound: the operands are exact (tested below), products of tf32 or bf16
// operands are exact in float32, so only the tensor core's additions differ
// from the emulator's (which adds in double and rounds once). Their order
// and rounding are undocumented; with products aligned to the largest
// exponent and truncated (Fasi et al. 2021, PeerJ CS 7:e330) the worst case
// is about (K + 1) 2^-23 of the largest term, 2e-6 for K = 16. 1e-5 still
// fails any layout error (errors of order 1) by orders of magnitude.
TEST_CASE("cuda mma.m16n8k8 tf32 and m16n8k16 bf16 fragments match the emulator's layouts", "[cuda][warp_mma]") {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(7);
  for (int warps : {1, 4}) {
    {
      const auto A = randn(size_t(warps) * 16 * 8, gen), B = randn(size_t(warps) * 8 * 8, gen),
                 C = randn(size_t(warps) * 16 * 8, gen);
      DevBuf<float> a(A), b(B), c(C), d(C.size());
      CUDA_OK(probe_mma_tf32(a.p, b.p, c.p, d.p, warps));
      const double e = product_error(A, B, C, d.host(), 16, 8, 8, warps, sagan::round_tf32);
      INFO("tf32, " << warps << " warps: max error / magnitude " << e);
      CHECK(e <= 1e-5);
    }
    {
      const auto A = randn(size_t(warps) * 16 * 16, gen), B = randn(size_t(warps) * 16 * 8, gen),
                 C = randn(size_t(warps) * 16 * 8, gen);
      DevBuf<float> a(A), b(B), c(C), d(C.size());
      CUDA_OK(probe_mma_bf16(a.p, b.p, c.p, d.p, warps));
      const double e = product_error(A, B, C, d.host(), 16, 8, 16, warps, sagan::round_bf16);
      INFO("bf16, " << warps << " warps: max error / magnitude " << e);
      CHECK(e <= 1e-5);
    }
  }
}

TEST_CASE("cuda cvt.rna.tf32 and cvt.rn.bf16x2 round bit for bit as core/reduced_precision.h", "[cuda][warp_mma]") {
  SKIP_WITHOUT_GPU();
  auto f = [](uint32_t b) { return std::bit_cast<float>(b); };
  std::vector<float> x = {0.f,
                          -0.f,
                          1.f,
                          -2.5f,
                          1.f + std::ldexp(1.f, -8),
                          1.f + 3 * std::ldexp(1.f, -8),
                          1.f + std::ldexp(1.f, -11),
                          -(1.f + std::ldexp(1.f, -11)),
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          f(0x7f7f0000u),
                          f(0x00000001u),
                          f(0x00008000u),
                          f(0x00018000u),
                          f(0x00001000u),
                          f(0x80003000u),
                          f(0x7fc00000u),
                          f(0x7f800001u),
                          f(0xffc00000u),
                          f(0x7f80ffffu)};
  std::mt19937 gen(8);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 100000; ++i) {
    uint32_t b = bits(gen);
    if (i % 3 == 1) b = (b & 0xffff0000u) | 0x8000u;  // bf16 ties
    if (i % 3 == 2) b = (b & 0xffffe000u) | 0x1000u;  // tf32 ties
    x.push_back(f(b));
  }
  DevBuf<float> dx(x);
  DevBuf<uint32_t> t(x.size()), h(x.size());
  CUDA_OK(probe_convert(dx.p, t.p, h.p, static_cast<int>(x.size())));
  const auto ht = t.host(), hh = h.host();
  // A NaN's payload is the hardware's choice (CUTLASS expects a canonical
  // NaN); only NaN-ness is compared. The tensor core reads the upper 19 bits
  // of a .tf32 register; the PTX ISA leaves the low 13 implementation-defined,
  // so a difference there (the reference zeroes them) is reported, not failed.
  auto is_nan_f32 = [](uint32_t b) { return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0; };
  auto is_nan_bf16 = [](uint32_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0; };
  int bad_tf32 = 0, bad_bf16 = 0, low_bits_tf32 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t want_t = sagan::tf32_bits_rna(x[i]), want_h = sagan::bf16_bits_rn(x[i]);
    const bool nan_in = std::isnan(x[i]);
    const bool tf32_ok = nan_in ? is_nan_f32(ht[i] & 0xffffe000u) : (ht[i] & 0xffffe000u) == (want_t & 0xffffe000u);
    const bool bf16_ok = nan_in ? is_nan_bf16(hh[i] & 0xffffu) : hh[i] == want_h;
    if (tf32_ok && !nan_in && ht[i] != want_t) ++low_bits_tf32;
    if (!tf32_ok && bad_tf32++ < 5)
      UNSCOPED_INFO("tf32 of bits " << std::hex << std::bit_cast<uint32_t>(x[i]) << ": gpu " << ht[i] << ", cpu "
                                    << want_t);
    if (!bf16_ok && bad_bf16++ < 5)
      UNSCOPED_INFO("bf16 of bits " << std::hex << std::bit_cast<uint32_t>(x[i]) << ": gpu " << hh[i] << ", cpu "
                                    << want_h);
  }
  if (low_bits_tf32 > 0)
    WARN(low_bits_tf32 << " tf32 conversions set low bits the reference zeroes (ignored by the tensor cores)");
  CHECK(bad_tf32 == 0);
  CHECK(bad_bf16 == 0);
}

TEST_CASE("cuda ldmatrix.x4 hands lane l word l%4 of row l/4 of each matrix", "[cuda][warp_mma]") {
  SKIP_WITHOUT_GPU();
  DevBuf<uint32_t> out(32 * 4);
  CUDA_OK(probe_ldmatrix(out.p));
  const auto h = out.host();
  int bad = 0;
  for (int lane = 0; lane < 32; ++lane)
    for (int j = 0; j < 4; ++j) bad += h[lane * 4 + j] != uint32_t((j * 8 + lane / 4) * 8 + lane % 4);
  CHECK(bad == 0);
}
