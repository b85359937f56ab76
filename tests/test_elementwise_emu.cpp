// The CUDA elementwise and copy kernels (kernels/cuda/elementwise_kernels.cuh,
// copy_kernels.cuh) on the CPU emulator against the CPU backend: every
// unary op and its gradient, every binary op with broadcasting, on dense
// tensors (the flat path) and on strided views (transposes, slices, stride-0
// broadcasts: the merged geometry of kernels/cuda/strided.cuh), fill and the
// dtype-converting copy, outputs poisoned and checked untouched outside the
// view.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "sagan/kernels/elementwise_math.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/copy_kernels.cuh"
#include "sagan/kernels/cuda/elementwise_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

constexpr unsigned kElementwiseGrid = 3;  // blocks stride over the elements

// A (4, 6, 5) view of a poisoned (6, 4, 10) buffer: transposed, every other
// column. Returns the view; `buffer` keeps the storage.
Tensor poisoned_view(Tensor& buffer, DType dt) {
  buffer = Tensor::full({6, 4, 10}, NAN, dt);
  return buffer.transpose(0, 1).slice(2, 0, 10, 2);
}

template <class T>
void check_unary(DType dt, double tol) {
  Rng gen(8);
  const Tensor x = add(abs(Tensor::randn({4, 6, 5}, gen, dt)), 0.1);  // positive: log, sqrt, pow defined
  const Tensor xt = x.transpose(0, 2).contiguous().transpose(0, 2);   // the same values, strided
  const Tensor gy = Tensor::randn({4, 6, 5}, gen, dt);
  for (int o = 0; o <= static_cast<int>(UnaryOp::RDivScalar); ++o) {
    const UnaryOp op = static_cast<UnaryOp>(o);
    INFO(unary_op_name(op) << " " << dtype_name(dt));
    const double alpha = 0.7;
    Tensor want = Tensor::empty(x.shape(), dt);
    backend_for(Device::cpu()).unary(op, x, want, alpha);
    for (const bool strided : {false, true}) {
      INFO("strided " << strided);
      Tensor buffer;
      Tensor out = strided ? poisoned_view(buffer, dt) : Tensor::full(x.shape(), NAN, dt);
      const Tensor& in = strided ? xt : x;
      const cu::Strided<2> g = cu::make_strided<2>("unary", out.shape(), {&out.strides(), &in.strides()});
      math::with_unary<T>(op, [&](auto f) {
        cuda_emu::launch(cu::unary_kernel<T, decltype(f)>, dim3(kElementwiseGrid), dim3(cu::kBlock), 0,
                         static_cast<const T*>(in.raw_data()), static_cast<T*>(out.raw_data()), g, out.numel(), f,
                         static_cast<T>(alpha));
      });
      CHECK_CLOSE(out, want, tol, tol);
      if (strided) CHECK(std::isnan(buffer.to_vector()[1]));  // a skipped column stays poisoned

      // Gradient, y = op(x).
      Tensor want_gx = Tensor::empty(x.shape(), dt);
      backend_for(Device::cpu()).unary_backward(op, x, want, gy, want_gx, alpha);
      Tensor gbuf;
      Tensor gx = strided ? poisoned_view(gbuf, dt) : Tensor::full(x.shape(), NAN, dt);
      const Tensor y = strided ? want.transpose(0, 2).contiguous().transpose(0, 2) : want;
      const cu::Strided<4> g4 =
          cu::make_strided<4>("unary_backward", gx.shape(), {&gx.strides(), &in.strides(), &y.strides(), &gy.strides()});
      math::with_unary_grad<T>(op, [&](auto df) {
        cuda_emu::launch(cu::unary_backward_kernel<T, decltype(df)>, dim3(kElementwiseGrid), dim3(cu::kBlock), 0,
                         static_cast<const T*>(in.raw_data()), static_cast<const T*>(y.raw_data()),
                         static_cast<const T*>(gy.raw_data()), static_cast<T*>(gx.raw_data()), g4, gx.numel(), df,
                         static_cast<T>(alpha));
      });
      CHECK_CLOSE(gx, want_gx, tol, tol);
    }
  }
}

template <class T>
void check_binary(DType dt, double tol) {
  Rng gen(9);
  const Tensor a = add(abs(Tensor::randn({4, 6, 5}, gen, dt)), 0.1);
  // b broadcast along dims 0 and 2: (1, 6, 1) expanded, strides 0.
  const Tensor b_small = add(abs(Tensor::randn({1, 6, 1}, gen, dt)), 0.1);
  const Tensor b = b_small.expand({4, 6, 5});
  for (int o = 0; o <= static_cast<int>(BinaryOp::Min); ++o) {
    const BinaryOp op = static_cast<BinaryOp>(o);
    INFO(binary_op_name(op) << " " << dtype_name(dt));
    Tensor want = Tensor::empty(a.shape(), dt);
    backend_for(Device::cpu()).binary(op, a, b.contiguous(), want);
    Tensor buffer;
    Tensor out = poisoned_view(buffer, dt);
    const cu::Strided<3> g =
        cu::make_strided<3>("binary", out.shape(), {&out.strides(), &a.strides(), &b.strides()});
    math::with_binary<T>(op, [&](auto f) {
      cuda_emu::launch(cu::binary_kernel<T, decltype(f)>, dim3(kElementwiseGrid), dim3(cu::kBlock), 0,
                       static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()),
                       static_cast<T*>(out.raw_data()), g, out.numel(), f);
    });
    CHECK_CLOSE(out, want, tol, tol);
  }
}
}  // namespace

TEST_CASE("emulated CUDA unary ops and their gradients match the CPU backend, dense and strided",
          "[elementwise][cuda_emu]") {
  check_unary<double>(DType::F64, 1e-14);
  check_unary<float>(DType::F32, 1e-6);
}

TEST_CASE("emulated CUDA binary ops match the CPU backend with broadcasting", "[elementwise][cuda_emu]") {
  check_binary<double>(DType::F64, 1e-14);
  check_binary<float>(DType::F32, 1e-6);
}

TEST_CASE("emulated CUDA fill and converting copy write exactly the view", "[elementwise][cuda_emu]") {
  Tensor buffer;
  Tensor view = poisoned_view(buffer, DType::F64);
  const cu::Strided<1> g = cu::make_strided<1>("fill", view.shape(), {&view.strides()});
  cuda_emu::launch(cu::fill_kernel<double>, dim3(kElementwiseGrid), dim3(cu::kBlock), 0,
                   static_cast<double*>(view.raw_data()), g, view.numel(), -2.5);
  const std::vector<double> all = buffer.to_vector();
  int64_t filled = 0;
  for (double v : all) filled += v == -2.5;
  CHECK(filled == view.numel());  // the view's elements, nothing else
  for (double v : view.to_vector()) CHECK(v == -2.5);

  // float32 (transposed) -> float64 view, and int64 -> float32 dense.
  Rng gen(10);
  const Tensor src = Tensor::randn({5, 6, 4}, gen, DType::F32).transpose(0, 2);  // (4, 6, 5), strided
  Tensor dbuf;
  Tensor dst = poisoned_view(dbuf, DType::F64);
  const cu::Strided<2> g2 = cu::make_strided<2>("copy", dst.shape(), {&dst.strides(), &src.strides()});
  cuda_emu::launch(cu::copy_kernel<double, float>, dim3(kElementwiseGrid), dim3(cu::kBlock), 0,
                   static_cast<double*>(dst.raw_data()), static_cast<const float*>(src.raw_data()), g2, dst.numel());
  CHECK(dst.to_vector() == src.to(DType::F64).to_vector());
  const Tensor ints = Tensor::from_vector(std::vector<int64_t>{3, -7, 0, 12}, {4});
  Tensor f = Tensor::full({4}, NAN, DType::F32);
  const cu::Strided<2> g3 = cu::make_strided<2>("copy", f.shape(), {&f.strides(), &ints.strides()});
  cuda_emu::launch(cu::copy_kernel<float, int64_t>, dim3(1), dim3(cu::kBlock), 0, static_cast<float*>(f.raw_data()),
                   static_cast<const int64_t*>(ints.raw_data()), g3, int64_t{4});
  CHECK(f.to_vector() == std::vector<double>{3, -7, 0, 12});
  // float -> int64 where C++ leaves it undefined: the kernel's rule is the CPU's.
  const Tensor edge = Tensor::from_vector(std::vector<double>{NAN, 1e30, -1e30, -2.7, 0x1p63}, {5}, DType::F32);
  Tensor i64 = Tensor::full({5}, 77, DType::I64);
  const cu::Strided<2> g4 = cu::make_strided<2>("copy", i64.shape(), {&i64.strides(), &edge.strides()});
  cuda_emu::launch(cu::copy_kernel<int64_t, float>, dim3(1), dim3(cu::kBlock), 0, static_cast<int64_t*>(i64.raw_data()),
                   static_cast<const float*>(edge.raw_data()), g4, int64_t{5});
  CHECK(i64.to_int_vector() == edge.to(DType::I64).to_int_vector());
}

TEST_CASE("FastDiv divides every 31-bit numerator exactly, across divisors and at the edges", "[elementwise][cuda_emu]") {
  Rng gen(21);
  std::vector<uint32_t> divisors = {1, 2, 3, 5, 7, 10, 64, 255, 256, 257, 1000, 65535, 65536, 65537, 1u << 20,
                                    (1u << 30) - 1, 1u << 30, (1u << 30) + 1, 0x7ffffffeu, 0x7fffffffu};
  for (int i = 0; i < 200; ++i) divisors.push_back(1 + static_cast<uint32_t>(gen.below(0x7fffffffu)));
  for (uint32_t d : divisors) {
    const cu::FastDiv f = cu::FastDiv::make(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, 0x7ffffffeu, 0x7fffffffu};
    for (int i = 0; i < 2000; ++i) ns.push_back(static_cast<uint32_t>(gen.below(0x80000000u)));
    for (uint32_t n : ns) {
      if (n > 0x7fffffffu) continue;
      if (f.div(n) != n / d) {
        INFO("n " << n << " d " << d);
        CHECK(f.div(n) == n / d);
      }
    }
  }
}

TEST_CASE("strided offsets: the 32-bit path equals the 64-bit one on broadcast and permuted geometries",
          "[elementwise][cuda_emu]") {
  const Tensor a = Tensor::zeros({3, 5, 7, 11}).permute({2, 0, 3, 1});
  const Tensor b = Tensor::zeros({3, 1, 7, 1}).expand({3, 5, 7, 11});
  const Tensor c = Tensor::zeros({5, 7, 11});
  const Shape shape{3, 5, 7, 11};
  const Shape sa = a.permute({1, 3, 0, 2}).strides(), sb = b.strides();
  Shape sc{0, c.strides()[0], c.strides()[1], c.strides()[2]};
  cu::Strided<3> fast = cu::make_strided<3>("test", shape, {&sa, &sb, &sc});
  REQUIRE(fast.narrow);
  cu::Strided<3> wide = fast;
  wide.narrow = false;
  for (int64_t i = 0; i < numel_of(shape); ++i) {
    int64_t o1[3], o2[3];
    fast.offsets(i, o1);
    wide.offsets(i, o2);
    if (o1[0] != o2[0] || o1[1] != o2[1] || o1[2] != o2[2]) {
      INFO("index " << i);
      CHECK(o1[0] == o2[0]);
      CHECK(o1[1] == o2[1]);
      CHECK(o1[2] == o2[2]);
    }
  }
  // 2^31 elements or more keep the 64-bit division.
  const Shape big{1 << 16, 1 << 15}, st{1 << 15, 1};
  CHECK_FALSE(cu::make_strided<1>("test", big, {&st}).narrow);
}
