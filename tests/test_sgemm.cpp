// The packed-B float32 GEMM (kernels/cpu/sgemm.h) against a float64 loop:
// every row remainder of the 12-row micro-kernel, column remainders of the
// 32-column panels, strided (transposed) A and B, accumulation, K = 0, and
// the threaded path of a large product. Each case runs on every micro-kernel
// this CPU supports (the portable loop, AVX2, AVX-512), not only on the one
// sgemm_packed picks, so an AVX-512 machine checks the AVX2 kernel too.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "sagan/core/rng.h"
#include "sagan/kernels/cpu/sgemm.h"

using namespace sagan;

namespace {

std::vector<cpu::SgemmKernel> kernels() {
  std::vector<cpu::SgemmKernel> out;
  for (cpu::SgemmKernel k : {cpu::SgemmKernel::Portable, cpu::SgemmKernel::Avx2, cpu::SgemmKernel::Avx512}) {
    if (cpu::sgemm_kernel_supported(k))
      out.push_back(k);
    else
      WARN("this CPU cannot run the " << cpu::sgemm_kernel_name(k) << " sgemm kernel: not checked here");
  }
  return out;
}

struct SgemmCase {
  int64_t M, N, K;
  bool a_transposed, b_transposed, accumulate;
};

// C = A @ B (+ C0) with A (M, K), B (K, N) stored as asked; returns the
// largest error relative to sum_k |a||b| (the float32 rounding scale).
double run_case(cpu::SgemmKernel kernel, const SgemmCase& c, Rng& gen) {
  std::vector<float> a(static_cast<size_t>(c.M * c.K)), b(static_cast<size_t>(c.K * c.N));
  std::vector<float> out(static_cast<size_t>(c.M * c.N) + 5);  // + 5: nothing may be written past C
  for (float& v : a) v = static_cast<float>(gen.normal());
  for (float& v : b) v = static_cast<float>(gen.normal());
  for (float& v : out) v = static_cast<float>(gen.normal());
  const std::vector<float> c0 = out;
  // A (i, k) at a[i*si + k*sk]; B (k, n) at b[k*sk + n*sn].
  const int64_t si = c.a_transposed ? 1 : c.K, ska = c.a_transposed ? c.M : 1;
  const int64_t skb = c.b_transposed ? 1 : c.N, sn = c.b_transposed ? c.K : 1;
  std::vector<float> bp(static_cast<size_t>(cpu::packed_b_size(c.K, c.N)));
  cpu::sgemm_pack_b(c.K, c.N, b.data(), skb, sn, bp.data());
  cpu::sgemm_packed_with(kernel, c.M, c.N, c.K, a.data(), si, ska, bp.data(), out.data(), c.N, c.accumulate);
  double worst = 0;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t n = 0; n < c.N; ++n) {
      double ref = c.accumulate ? c0[static_cast<size_t>(i * c.N + n)] : 0.0, scale = 1.0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double p = double(a[static_cast<size_t>(i * si + k * ska)]) * b[static_cast<size_t>(k * skb + n * sn)];
        ref += p;
        scale += std::abs(p);
      }
      worst = std::max(worst, std::abs(out[static_cast<size_t>(i * c.N + n)] - ref) / scale);
    }
  for (size_t j = static_cast<size_t>(c.M * c.N); j < out.size(); ++j) REQUIRE(out[j] == c0[j]);
  return worst;
}

}  // namespace

TEST_CASE("sgemm: row and column remainders, strides, accumulation", "[sgemm]") {
  Rng gen(41);
  for (cpu::SgemmKernel kernel : kernels()) {
    INFO("kernel " << cpu::sgemm_kernel_name(kernel));
    for (int64_t M = 1; M <= 25; M += (M < 13 ? 1 : 12))
      for (int64_t N : {1, 7, 8, 9, 16, 17, 24, 32, 33, 70})
        for (bool acc : {false, true}) {
          SgemmCase c{M, N, 19, false, false, acc};
          INFO("M " << M << " N " << N << " accumulate " << acc);
          CHECK(run_case(kernel, c, gen) < 1e-6);
        }
    for (bool at : {false, true})
      for (bool bt : {false, true}) {
        SgemmCase c{29, 45, 37, at, bt, true};
        INFO("A transposed " << at << " B transposed " << bt);
        CHECK(run_case(kernel, c, gen) < 1e-6);
      }
  }
}

TEST_CASE("sgemm: the kernel picked is the best the CPU supports; an unsupported one is refused", "[sgemm]") {
  const cpu::SgemmKernel best = cpu::sgemm_kernel();
  CHECK(cpu::sgemm_kernel_supported(best));
  if (cpu::sgemm_kernel_supported(cpu::SgemmKernel::Avx512))
    CHECK(best == cpu::SgemmKernel::Avx512);
  else if (cpu::sgemm_kernel_supported(cpu::SgemmKernel::Avx2))
    CHECK(best == cpu::SgemmKernel::Avx2);
  else
    CHECK(best == cpu::SgemmKernel::Portable);
  for (cpu::SgemmKernel k : {cpu::SgemmKernel::Avx2, cpu::SgemmKernel::Avx512})
    if (!cpu::sgemm_kernel_supported(k)) {
      float a = 1, bp[32] = {}, c = 0;
      REQUIRE_THROWS_WITH(cpu::sgemm_packed_with(k, 1, 1, 1, &a, 1, 1, bp, &c, 1, false),
                          Catch::Contains("cannot run the") && Catch::Contains(cpu::sgemm_kernel_name(k)));
    }
}

TEST_CASE("sgemm: K = 0 clears or keeps C; large products run threaded", "[sgemm]") {
  Rng gen(42);
  for (cpu::SgemmKernel kernel : kernels()) {
    INFO("kernel " << cpu::sgemm_kernel_name(kernel));
    CHECK(run_case(kernel, {5, 9, 0, false, false, false}, gen) == 0.0);
    CHECK(run_case(kernel, {5, 9, 0, false, false, true}, gen) == 0.0);
    // 2*M*N*K above the threading threshold, odd sizes.
    CHECK(run_case(kernel, {131, 203, 257, false, false, false}, gen) < 1e-6);
    CHECK(run_case(kernel, {131, 203, 257, true, true, true}, gen) < 1e-6);
  }
}
