// The CUDA row-softmax kernels (kernels/cuda/softmax.cuh: softmax,
// softmax_backward, the unfused attention's log-sum-exp, log_softmax and its
// backward) on the CPU emulator against the CPU backend: rows longer and
// shorter than a block, more rows than the grid (blocks stride over rows),
// large logits, in place, both dtypes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/softmax.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

template <class T>
void check_softmax(DType dt, int64_t rows, int64_t n, double tol) {
  INFO(dtype_name(dt) << ", " << rows << " rows of " << n);
  Rng gen(6);
  const Tensor x = mul(Tensor::randn({rows, n}, gen, dt), 30.0);  // logits far from 0: the max shift matters
  Backend& cpu = backend_for(Device::cpu());
  Tensor want = Tensor::empty({rows, n}, dt);
  cpu.softmax(x, want);
  const unsigned grid = 3;
  const int block = cu::block_for_row(n);
  Tensor y = Tensor::full({rows, n}, NAN, dt), lse = Tensor::full({rows}, NAN, dt);
  cuda_emu::launch(cu::softmax_rows_kernel<T>, dim3(grid), dim3(block), 0, static_cast<const T*>(x.raw_data()),
                   static_cast<T*>(y.raw_data()), static_cast<T*>(lse.raw_data()), rows, n);
  CHECK_CLOSE(y, want, 0, tol);
  const std::vector<double> xs = x.to_vector(), l = lse.to_vector();
  for (int64_t r = 0; r < rows; ++r) {  // lse = log(sum(exp(x))), shifted by the max
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, xs[static_cast<size_t>(r * n + i)]);
    for (int64_t i = 0; i < n; ++i) s += std::exp(xs[static_cast<size_t>(r * n + i)] - m);
    CHECK(l[static_cast<size_t>(r)] == Approx(m + std::log(s)).epsilon(tol));
  }
  // In place gives the same.
  Tensor inplace = x.clone();
  T* ip = static_cast<T*>(inplace.raw_data());
  cuda_emu::launch(cu::softmax_rows_kernel<T>, dim3(grid), dim3(block), 0, static_cast<const T*>(ip), ip,
                   static_cast<T*>(nullptr), rows, n);
  CHECK(inplace.to_vector() == y.to_vector());

  const Tensor gy = Tensor::randn({rows, n}, gen, dt);
  Tensor gx = Tensor::full({rows, n}, NAN, dt), want_gx = Tensor::empty({rows, n}, dt);
  cpu.softmax_backward(want, gy, want_gx);
  cuda_emu::launch(cu::softmax_backward_rows_kernel<T>, dim3(grid), dim3(block), 0,
                   static_cast<const T*>(want.raw_data()), static_cast<const T*>(gy.raw_data()),
                   static_cast<T*>(gx.raw_data()), rows, n);
  CHECK_CLOSE(gx, want_gx, 0, tol);
}

template <class T>
void check_log_softmax(DType dt, int64_t rows, int64_t n, double tol) {
  INFO(dtype_name(dt) << ", log_softmax, " << rows << " rows of " << n);
  Rng gen(7);
  Tensor x = mul(Tensor::randn({rows, n}, gen, dt), 60.0);  // logits of +-60 and beyond: exp overflows unshifted
  Backend& cpu = backend_for(Device::cpu());
  Tensor want = Tensor::empty({rows, n}, dt), y = Tensor::full({rows, n}, NAN, dt);
  cpu.log_softmax(x, want);
  const unsigned grid = 3;
  const int block = cu::block_for_row(n);
  cuda_emu::launch(cu::log_softmax_rows_kernel<T>, dim3(grid), dim3(block), 0, static_cast<const T*>(x.raw_data()),
                   static_cast<T*>(y.raw_data()), rows, n);
  CHECK_CLOSE(y, want, tol, tol);

  const Tensor gy = Tensor::randn({rows, n}, gen, dt);
  Tensor gx = Tensor::full({rows, n}, NAN, dt), want_gx = Tensor::empty({rows, n}, dt);
  cpu.log_softmax_backward(want, gy, want_gx);
  cuda_emu::launch(cu::log_softmax_backward_rows_kernel<T>, dim3(grid), dim3(block), 0,
                   static_cast<const T*>(want.raw_data()), static_cast<const T*>(gy.raw_data()),
                   static_cast<T*>(gx.raw_data()), rows, n);
  CHECK_CLOSE(gx, want_gx, tol, tol);
}
}  // namespace

TEST_CASE("emulated CUDA row softmax matches the CPU backend: forward, log-sum-exp, backward", "[softmax][cuda_emu]") {
  check_softmax<double>(DType::F64, 7, 300, 1e-12);  // rows longer than the 256-thread block
  check_softmax<float>(DType::F32, 7, 300, 1e-6);
  check_softmax<double>(DType::F64, 5, 17, 1e-12);  // a one-warp block, lanes beyond the row idle
  check_softmax<float>(DType::F32, 2, 1, 1e-6);     // one element a row: 1
}

TEST_CASE("emulated CUDA row log_softmax matches the CPU backend: forward and backward", "[softmax][cuda_emu]") {
  check_log_softmax<double>(DType::F64, 7, 300, 1e-12);  // rows longer than the block
  check_log_softmax<float>(DType::F32, 7, 300, 1e-5);
  check_log_softmax<double>(DType::F64, 5, 10, 1e-12);  // the classifiers' 10 classes: one warp, lanes idle
  check_log_softmax<float>(DType::F32, 2, 1, 1e-6);     // one element a row: 0
}
