// The small kernels around cuBLAS in the unfused attention's backward
// (kernels/cuda/attention_kernels.cuh: P = exp(S - lse), D = rowsum(dO * O),
// dS = P * (dP - D)) and the per-matrix power iteration's normalisation
// (kernels/cuda/spectral_norm_kernels.cuh) on the CPU emulator, against
// float64 loops: odd row lengths, more rows than the grid's threads, strided
// vectors and the eps branch.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/attention_kernels.cuh"
#include "sagan/kernels/cuda/spectral_norm_kernels.cuh"
// clang-format on

namespace {
namespace cu = sagan::cuda;

template <class T>
std::vector<T> randn(size_t n, std::mt19937& gen, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(d(gen));
  return v;
}

template <class T>
void check_attention(double tol) {
  std::mt19937 gen(3);
  const int64_t rows = 37, n = 45, total = rows * n;
  const std::vector<T> s0 = randn<T>(static_cast<size_t>(total), gen, 2.0), lse = randn<T>(rows, gen);
  std::vector<T> s = s0;
  cuda_emu::launch(cu::exp_minus_lse_kernel<T>, dim3(2), dim3(cu::kBlock), 0, s.data(), lse.data(), n, total);
  for (int64_t e = 0; e < total; ++e)
    CHECK(double(s[e]) == Approx(std::exp(double(s0[e]) - double(lse[e / n]))).epsilon(tol));

  // D[row] = sum_j a b, one warp a row: 37 rows over 2 blocks of 8 warps.
  const std::vector<T> a = randn<T>(static_cast<size_t>(total), gen), b = randn<T>(static_cast<size_t>(total), gen);
  std::vector<T> d(rows, T(NAN));
  cuda_emu::launch(cu::row_dot_kernel<T>, dim3(2), dim3(cu::kBlock), 0, a.data(), b.data(), d.data(), rows, n);
  for (int64_t r = 0; r < rows; ++r) {
    double want = 0;
    for (int64_t j = 0; j < n; ++j) want += double(a[r * n + j]) * double(b[r * n + j]);
    CHECK(double(d[r]) == Approx(want).epsilon(tol).margin(tol));
  }

  std::vector<T> dp = b;
  cuda_emu::launch(cu::softmax_grad_kernel<T>, dim3(2), dim3(cu::kBlock), 0, static_cast<const T*>(a.data()),
                   dp.data(), static_cast<const T*>(d.data()), n, total);
  for (int64_t e = 0; e < total; ++e)
    CHECK(double(dp[e]) == Approx(double(a[e]) * (double(b[e]) - double(d[e / n]))).epsilon(tol).margin(tol));
}

template <class T>
void check_normalize(double tol) {
  std::mt19937 gen(4);
  // Every third element of a buffer (a row of W^T's column-major view), 301 long.
  const int64_t n = 301, inc = 3;
  std::vector<T> buf = randn<T>(static_cast<size_t>(n * inc), gen), orig = buf;
  cuda_emu::launch(cu::normalize_kernel<T>, dim3(1), dim3(cu::kBlock), 0, buf.data(), n, inc, 1e-12);
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(orig[i * inc]) * double(orig[i * inc]);
  const double norm = std::sqrt(ss);
  for (int64_t i = 0; i < n * inc; ++i) {
    if (i % inc == 0)
      CHECK(double(buf[i]) == Approx(double(orig[i]) / norm).epsilon(tol));
    else
      CHECK(buf[i] == orig[i]);  // between the strided elements: untouched
  }
  // A vector shorter than eps is divided by eps, not by its norm.
  std::vector<T> tiny(5, T(1e-9));
  cuda_emu::launch(cu::normalize_kernel<T>, dim3(1), dim3(cu::kBlock), 0, tiny.data(), int64_t{5}, int64_t{1}, 1e-3);
  for (T v : tiny) CHECK(double(v) == Approx(1e-6).epsilon(tol));
}
}  // namespace

TEST_CASE("emulated CUDA unfused-attention backward kernels match float64 loops", "[attention][cuda_emu]") {
  check_attention<double>(1e-12);
  check_attention<float>(1e-5);
}

TEST_CASE("emulated CUDA spectral-norm normalisation: strided, and the eps branch", "[spectral_norm][cuda_emu]") {
  check_normalize<double>(1e-12);
  check_normalize<float>(1e-6);
}
