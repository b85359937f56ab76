// The CPU kernels give the same bits for any OpenMP thread count: their
// work is split into pieces fixed by the shapes (kernels/cpu/image_chunks.h,
// gemm.cpp), each GEMM on one thread, sums added in a fixed order. So a run
// resumed with another OMP_NUM_THREADS (another machine, a scheduler's
// allocation) continues exactly. Each case runs forward and backward with
// 1, 2, 3 and 5 threads and compares every output and gradient bit for bit.

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>

#include "sagan/core/ops.h"
#include "sagan/core/ops_vision.h"
#include "sagan/core/rng.h"
#include "tests/support/omp_threads.h"

using namespace sagan;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Output and input gradients (for a fixed random upstream gradient) as raw bits.
std::vector<uint32_t> run_bits(const Fn& f, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> in;
  for (const Tensor& t : inputs) in.push_back(t.clone().set_requires_grad(true));
  Tensor y = f(in);
  Rng g(99);
  y.backward(Tensor::randn(y.shape(), g));
  std::vector<uint32_t> bits;
  auto add = [&](const Tensor& t) {
    const Tensor c = t.contiguous();
    const float* p = c.data<float>();
    for (int64_t i = 0; i < c.numel(); ++i) {
      uint32_t u;
      std::memcpy(&u, p + i, 4);
      bits.push_back(u);
    }
  };
  add(y);
  for (const Tensor& t : in) add(t.grad());
  return bits;
}

void check_thread_independent(const Fn& f, const std::vector<Tensor>& inputs) {
  const std::vector<uint32_t> one = [&] {
    const testing::OmpThreads scope(1);
    return run_bits(f, inputs);
  }();
  for (int threads : {2, 3, 5}) {
    INFO(threads << " threads");
    const std::vector<uint32_t> other = [&] {
      const testing::OmpThreads scope(threads);
      return run_bits(f, inputs);
    }();
    REQUIRE(other.size() == one.size());
    size_t differ = 0;
    for (size_t i = 0; i < one.size(); ++i) differ += one[i] != other[i];
    CHECK(differ == 0);
  }
}

}  // namespace

TEST_CASE("CPU convolutions and GEMMs give the same bits for any thread count", "[cpu_threads]") {
  Rng g(1);
  auto R = [&](const Shape& s) { return Tensor::randn(s, g); };
  SECTION("3x3 conv, im2col, a batch of 16") {
    check_thread_independent([](const auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                             {R({16, 8, 12, 12}), R({16, 8, 3, 3}), R({16})});
  }
  SECTION("3x3 conv, Winograd, a batch of 10") {
    check_thread_independent([](const auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                             {R({10, 32, 8, 8}), R({32, 32, 3, 3}), R({32})});
  }
  SECTION("3x3 conv, direct loops (3 outputs, a partial row segment), a batch of 12") {
    check_thread_independent([](const auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                             {R({12, 40, 19, 19}), R({3, 40, 3, 3}), R({3})});
  }
  SECTION("3x3 conv, a batch of 2 (fewer images than threads)") {
    check_thread_independent([](const auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                             {R({2, 32, 10, 10}), R({32, 32, 3, 3}), R({32})});
  }
  SECTION("1x1 conv and a strided 4x4 conv") {
    check_thread_independent([](const auto& v) { return conv2d(v[0], v[1], v[2], 1, 0); },
                             {R({9, 24, 6, 6}), R({20, 24, 1, 1}), R({20})});
    check_thread_independent([](const auto& v) { return conv2d(v[0], v[1], v[2], 2, 1); },
                             {R({6, 4, 13, 13}), R({8, 4, 4, 4}), R({8})});
  }
  SECTION("rectangular conv") {
    check_thread_independent(
        [](const auto& v) {
          return conv2d_rect(v[0], v[1], std::nullopt, Conv2dRectGeom{1, 1, 0, 1});
        },
        {R({12, 6, 9, 9}), R({10, 6, 1, 3})});
  }
  SECTION("linear layers (a batch-of-one GEMM) and batched GEMMs") {
    check_thread_independent([](const auto& v) { return linear(v[0], v[1], v[2]); },
                             {R({64, 700}), R({300, 700}), R({300})});
    check_thread_independent([](const auto& v) { return bmm(v[0], v[1]); }, {R({3, 150, 400}), R({3, 400, 90})});
  }
}
