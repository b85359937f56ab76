// --precision tf32|bf16 on the GPU (core/matmul_precision.h), against the
// exact (float64) result and against the CPU backend's emulation of the
// same rounding (kernels/cpu/operand_rounding.h: round to nearest).
// What cuBLAS and cuDNN promise is the reduced precision, not how they round
// the operands (a tensor core fed float32 bits truncates them; on these
// shapes truncation is 9e-4 (TF32) and 7e-3 (bf16) normwise away from round
// to nearest), nor which algorithm: so the bounds are against the exact
// result, at the precision's own scale, and the distance to the emulation is
// reported (WARN) when it is more than summation order explains:
// - bmm (cuBLAS; TF32 math for tf32; for bf16, operands rounded to nearest
//   even by gemm.cu into bf16 copies, then CUBLAS_COMPUTE_32F; row-major,
//   b transposed, beta = 1):
//   TF32 within kTolTF32 (1e-3; truncation gives 7.7e-4), bf16 within 1e-2
//   (truncation 6.2e-3, round to nearest 2.4e-3); bf16 also within 1e-5 of
//   the CPU's emulation, since the rounding is the engine's own and only the
//   float32 summation order differs.
// - conv2d forward (with bias), backward-input, backward-weight (3x3, 1x1,
//   3x3 stride 2): TF32 within
//   kTolTF32Conv (5e-3), as PyTorch's TF32 convolution tests allow (Winograd-type
//   algorithms round transformed operands); bf16 (cuDNN on bf16 copies)
//   within 2e-2, and its results are bf16 numbers.
// - attention: bf16 precision takes the tc-bf16 kernels, bit for bit.
#include <bit>
#include <cstdint>

#include "sagan/core/matmul_precision.h"
#include "sagan/core/ops.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

int64_t not_bf16(const Tensor& t) {
  int64_t n = 0;
  for (double v : t.to_vector()) n += (std::bit_cast<uint32_t>(static_cast<float>(v)) & 0xffffu) != 0;
  return n;
}

// The distance from the CPU's round-to-nearest emulation, reported when it
// is more than summation order explains.
void report_emulation_distance(const char* what, double d) {
  if (d > 1e-5)
    WARN(what << ": " << d
              << " normwise from the CPU's round-to-nearest emulation (the library rounds its operands "
                 "otherwise, or picked another algorithm)");
}

}  // namespace

TEST_CASE("cuda bmm in tf32 and bf16 keeps the precision's accuracy", "[cuda][precision]") {
  // Row-major operands, b as a transposed view (what every backward GEMM
  // passes), and beta = 1 (linear's bias, accumulated gradients).
  Rng gen(91);
  const Tensor a = Tensor::randn({3, 67, 129}, gen), b = Tensor::randn({3, 129, 45}, gen);
  const Tensor bt = Tensor::randn({3, 45, 129}, gen), c0 = Tensor::randn({3, 67, 45}, gen);
  struct Layout {
    const char* name;
    Tensor b;
    double beta;
  };
  const Layout layouts[] = {{"row-major", b, 0.0}, {"b transposed", bt.transpose(1, 2), 0.0}, {"beta 1", b, 1.0}};
  for (const Layout& l : layouts) {
    Tensor exact = c0.to(DType::F64);
    cpu().bmm(a.to(DType::F64), l.b.to(DType::F64), exact, l.beta);
    for (MatmulPrecision p : {MatmulPrecision::Tf32, MatmulPrecision::Bf16}) {
      INFO(l.name << ", " << matmul_precision_name(p));
      MatmulPrecisionScope scope(p);
      Tensor c = c0.clone(), g = l.beta == 0.0 ? poisoned({3, 67, 45}, DType::F32, dev()) : c0.to(dev());
      cpu().bmm(a, l.b, c, l.beta);
      gpu().bmm(a.to(dev()), l.b.to(dev()), g, l.beta);
      const double err = normwise(g, exact.to(DType::F32)), emu = normwise(g, c);
      INFO("normwise error " << err << ", from the emulation " << emu);
      CHECK(err <= (p == MatmulPrecision::Bf16 ? 1e-2 : kTolTF32));
      if (err < 1e-5) WARN(l.name << ": as exact as float32: cuBLAS did not reduce the precision here");
      if (p == MatmulPrecision::Bf16)
        CHECK(emu <= 1e-5);
      else
        report_emulation_distance("bmm", emu);
    }
  }
}

TEST_CASE("cuda conv2d in bf16 and tf32 keeps the precision's accuracy", "[cuda][precision][conv2d]") {
  // 3x3 stride 1 (the blocks), 1x1 (attention and shortcuts), 3x3 stride 2.
  struct Geometry {
    const char* name;
    int64_t k;
    Conv2dGeom g;
  };
  const Geometry geometries[] = {{"3x3 s1 p1", 3, {1, 1}}, {"1x1", 1, {1, 0}}, {"3x3 s2 p1", 3, {2, 1}}};
  Rng gen(92);
  for (const Geometry& geo : geometries) {
    const int64_t Ho = (13 + 2 * geo.g.pad - geo.k) / geo.g.stride + 1,
                  Wo = (11 + 2 * geo.g.pad - geo.k) / geo.g.stride + 1;
    const Shape ys{4, 16, Ho, Wo};
    const Tensor x = Tensor::randn({4, 24, 13, 11}, gen), w = Tensor::randn({16, 24, geo.k, geo.k}, gen);
    const Tensor bias = Tensor::randn({16}, gen), gy = Tensor::randn(ys, gen);
    // Exact references in float64.
    const Tensor x64 = x.to(DType::F64), w64 = w.to(DType::F64), gy64 = gy.to(DType::F64);
    Tensor y_exact = Tensor::empty(ys, DType::F64), gx_exact = Tensor::empty(x.shape(), DType::F64),
           gw_exact = Tensor::empty(w.shape(), DType::F64);
    cpu().conv2d(x64, w64, bias.to(DType::F64), y_exact, geo.g);
    cpu().conv2d_backward_input(gy64, w64, gx_exact, geo.g);
    cpu().conv2d_backward_weight(gy64, x64, gw_exact, geo.g);
    for (MatmulPrecision p : {MatmulPrecision::Tf32, MatmulPrecision::Bf16}) {
      INFO(geo.name << ", " << matmul_precision_name(p));
      MatmulPrecisionScope scope(p);
      const double tol = p == MatmulPrecision::Bf16 ? 2e-2 : kTolTF32Conv;
      auto check = [&](const char* what, const Tensor& got, const Tensor& emulated, const Tensor& exact) {
        const double err = normwise(got, exact.to(DType::F32)), emu = normwise(got, emulated);
        INFO(what << ": normwise error " << err << ", from the emulation " << emu);
        CHECK(err <= tol);
        report_emulation_distance(what, emu);
      };
      Tensor yc = Tensor::empty(ys), yg = poisoned(ys, DType::F32, dev());
      cpu().conv2d(x, w, bias, yc, geo.g);
      gpu().conv2d(x.to(dev()), w.to(dev()), bias.to(dev()), yg, geo.g);
      check("forward", yg, yc, y_exact);

      Tensor gxc = Tensor::empty(x.shape()), gxg = poisoned(x.shape(), DType::F32, dev());
      cpu().conv2d_backward_input(gy, w, gxc, geo.g);
      gpu().conv2d_backward_input(gy.to(dev()), w.to(dev()), gxg, geo.g);
      check("backward-input", gxg, gxc, gx_exact);

      Tensor gwc = Tensor::empty(w.shape()), gwg = poisoned(w.shape(), DType::F32, dev());
      cpu().conv2d_backward_weight(gy, x, gwc, geo.g);
      gpu().conv2d_backward_weight(gy.to(dev()), x.to(dev()), gwg, geo.g);
      check("backward-weight", gwg, gwc, gw_exact);

      if (p == MatmulPrecision::Bf16) {  // cuDNN's bf16 results, widened
        Tensor nob = poisoned(ys, DType::F32, dev());
        gpu().conv2d(x.to(dev()), w.to(dev()), std::nullopt, nob, geo.g);
        CHECK(not_bf16(nob) == 0);
        CHECK(not_bf16(gxg) == 0);
        CHECK(not_bf16(gwg) == 0);
      }
    }
  }
}

TEST_CASE("cuda attention under bf16 precision runs the tc-bf16 kernels", "[cuda][precision][attention_tc]") {
  Rng gen(93);
  const Tensor q = Tensor::randn({2, 256, 16}, gen).to(dev()), k = Tensor::randn({2, 64, 16}, gen).to(dev());
  const Tensor v = Tensor::randn({2, 64, 64}, gen).to(dev());
  Tensor explicit_tc, by_precision, fp32;
  // Pinned to the fused path (the run may select another through
  // SAGAN_CUDA_ATTENTION): bf16 precision reroutes only the fused kernels.
  AttentionImplScope fused(AttentionImpl::Fused);
  {
    AttentionImplScope tc(AttentionImpl::TcBf16);
    explicit_tc = attention(q, k, v).out;
  }
  {
    MatmulPrecisionScope bf16(MatmulPrecision::Bf16);
    by_precision = attention(q, k, v).out;
  }
  CHECK(bitwise_equal(explicit_tc, by_precision));
  fp32 = attention(q, k, v).out;  // the fused fp32 kernels: not the same bits
  CHECK_FALSE(bitwise_equal(fp32, by_precision));
}
