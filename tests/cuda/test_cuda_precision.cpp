// --precision tf32|bf16 on the GPU (core/matmul_precision.h) against the CPU
// backend's emulation of the same rounding (kernels/cpu/operand_rounding.h),
// both in float32 from the same inputs:
// - bmm (cuBLAS, CUBLAS_COMPUTE_32F_FAST_16BF for bf16, TF32 math for tf32):
//   the same rounded products, so only the summation order differs: 1e-5
//   normwise (a plain fp32 product is ~3e-3 away from the bf16 one).
// - conv2d forward (with bias), backward-input, backward-weight (cuDNN on
//   bf16 copies): bf16 results are bf16 numbers; normwise within 5e-4 of the
//   emulation (ties of the final rounding may fall either way; fp32 is ~3e-3
//   away). TF32: within kTolTF32 (cuDNN's Winograd-type algorithms round
//   transformed operands, which the CPU cannot mirror).
// - attention: bf16 precision takes the tc-bf16 kernels, bit for bit.
#include <bit>
#include <cstdint>

#include "core/matmul_precision.h"
#include "core/ops.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

int64_t not_bf16(const Tensor& t) {
  int64_t n = 0;
  for (double v : t.to_vector()) n += (std::bit_cast<uint32_t>(static_cast<float>(v)) & 0xffffu) != 0;
  return n;
}

}  // namespace

TEST_CASE("cuda bmm in tf32 and bf16 matches the cpu's emulated rounding", "[cuda][precision]") {
  Rng gen(91);
  const Tensor a = Tensor::randn({3, 67, 129}, gen), b = Tensor::randn({3, 129, 45}, gen);
  for (MatmulPrecision p : {MatmulPrecision::Tf32, MatmulPrecision::Bf16}) {
    INFO(matmul_precision_name(p));
    MatmulPrecisionScope scope(p);
    Tensor c = Tensor::empty({3, 67, 45}), g = poisoned({3, 67, 45}, DType::F32, dev());
    cpu().bmm(a, b, c, 0.0);
    gpu().bmm(a.to(dev()), b.to(dev()), g, 0.0);
    CHECK(normwise(g, c) <= 1e-5);
  }
}

TEST_CASE("cuda conv2d in bf16 and tf32 matches the cpu's emulated rounding", "[cuda][precision][conv2d]") {
  Rng gen(92);
  const Tensor x = Tensor::randn({4, 24, 13, 11}, gen), w = Tensor::randn({16, 24, 3, 3}, gen);
  const Tensor bias = Tensor::randn({16}, gen), gy = Tensor::randn({4, 16, 13, 11}, gen);
  for (MatmulPrecision p : {MatmulPrecision::Tf32, MatmulPrecision::Bf16}) {
    INFO(matmul_precision_name(p));
    MatmulPrecisionScope scope(p);
    const double tol = p == MatmulPrecision::Bf16 ? 5e-4 : kTolTF32;
    Tensor yc = Tensor::empty({4, 16, 13, 11}), yg = poisoned({4, 16, 13, 11}, DType::F32, dev());
    cpu().conv2d(x, w, bias, yc, {1, 1});
    gpu().conv2d(x.to(dev()), w.to(dev()), bias.to(dev()), yg, {1, 1});
    CHECK(normwise(yg, yc) <= tol);

    Tensor gxc = Tensor::empty(x.shape()), gxg = poisoned(x.shape(), DType::F32, dev());
    cpu().conv2d_backward_input(gy, w, gxc, {1, 1});
    gpu().conv2d_backward_input(gy.to(dev()), w.to(dev()), gxg, {1, 1});
    CHECK(normwise(gxg, gxc) <= tol);

    Tensor gwc = Tensor::empty(w.shape()), gwg = poisoned(w.shape(), DType::F32, dev());
    cpu().conv2d_backward_weight(gy, x, gwc, {1, 1});
    gpu().conv2d_backward_weight(gy.to(dev()), x.to(dev()), gwg, {1, 1});
    CHECK(normwise(gwg, gwc) <= tol);

    if (p == MatmulPrecision::Bf16) {  // cuDNN's bf16 results, widened
      Tensor nob = poisoned({4, 16, 13, 11}, DType::F32, dev());
      gpu().conv2d(x.to(dev()), w.to(dev()), std::nullopt, nob, {1, 1});
      CHECK(not_bf16(nob) == 0);
      CHECK(not_bf16(gxg) == 0);
      CHECK(not_bf16(gwg) == 0);
    }
  }
}

TEST_CASE("cuda attention under bf16 precision runs the tc-bf16 kernels", "[cuda][precision][attention_tc]") {
  Rng gen(93);
  const Tensor q = Tensor::randn({2, 256, 16}, gen).to(dev()), k = Tensor::randn({2, 64, 16}, gen).to(dev());
  const Tensor v = Tensor::randn({2, 64, 64}, gen).to(dev());
  Tensor explicit_tc, by_precision;
  {
    AttentionImplScope tc(AttentionImpl::TcBf16);
    explicit_tc = attention(q, k, v).out;
  }
  {
    MatmulPrecisionScope bf16(MatmulPrecision::Bf16);
    by_precision = attention(q, k, v).out;
  }
  CHECK(bitwise_equal(explicit_tc, by_precision));
  const Tensor fp32 = attention(q, k, v).out;  // the fused fp32 kernels: not the same bits
  CHECK_FALSE(bitwise_equal(fp32, by_precision));
}
