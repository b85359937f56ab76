// CudaBackend::bmm's mapping onto cuBLAS (kernels/cuda/gemm_plan.h) and its
// K = 0 kernel (kernels/cuda/gemm_kernels.cuh), checked on the CPU: a model
// of cublas<t>gemmStridedBatched that follows cuBLAS's documented
// column-major contract, argument checks included, runs the call the mapping
// makes, and the result must equal the CPU backend's bmm. Operand layouts:
// row-major, column-major (a transposed view), padded rows or columns, a
// broadcast batch (size 1 or stride 0), batch-interleaved storage, single
// rows and columns, and the dense copy for both inner strides > 1 or a
// broadcast column; beta 0
// over a NaN-poisoned output and beta 0.5. The direct gemm calls of the
// unfused attention (kernels/cuda/attention.cu) are checked the same way.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/matmul_precision.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "sagan/kernels/cuda/gemm_plan.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/bf16_convert.cuh"
#include "sagan/kernels/cuda/gemm_kernels.cuh"
// clang-format on

namespace {

using namespace sagan;
namespace cu = sagan::cuda;

// cublas<t>gemmStridedBatched as documented: column-major, for each b
// C[b] = alpha op(A[b]) op(B[b]) + beta C[b] with op(A) m x k, op(B) k x n,
// element (i, j) of a column-major matrix at [i + j ld]. Returns false where
// cuBLAS returns CUBLAS_STATUS_INVALID_VALUE: a negative size, lda below
// max(1, m) (max(1, k) when transposed), ldb below max(1, k) (max(1, n)),
// ldc below max(1, m). beta == 0 does not read C.
template <class T>
bool cublas_model(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                  int64_t sa, const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc,
                  int64_t batch) {
  if (m < 0 || n < 0 || k < 0 || batch < 0) return false;
  if (lda < std::max<int64_t>(1, trans_a ? k : m) || ldb < std::max<int64_t>(1, trans_b ? n : k) ||
      ldc < std::max<int64_t>(1, m))
    return false;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        double acc = 0;
        for (int64_t l = 0; l < k; ++l) {
          const T a = trans_a ? A[b * sa + l + i * lda] : A[b * sa + i + l * lda];
          const T bv = trans_b ? B[b * sb + j + l * ldb] : B[b * sb + l + j * ldb];
          acc += double(a) * double(bv);
        }
        T& c = C[b * sc + i + j * ldc];
        c = static_cast<T>(double(alpha) * acc + (beta == T(0) ? 0.0 : double(beta) * double(c)));
      }
  return true;
}

// gemm.cu's bf16 operand: the span rounded to bf16 on the emulator, widened
// back to float (exactly) for the model, followed by NaNs so that a read past
// the span shows in the result.
std::vector<float> bf16_operand(const float* p, int64_t span) {
  std::vector<uint16_t> bits(static_cast<size_t>(span), 0xffff);  // a bf16 NaN
  cuda_emu::launch(cu::to_bf16_kernel, dim3(3), dim3(cu::kBlock), 0, p, bits.data(), span);
  std::vector<float> wide(static_cast<size_t>(span) + 64, NAN);
  cuda_emu::launch(cu::from_bf16_kernel, dim3(3), dim3(cu::kBlock), 0, static_cast<const uint16_t*>(bits.data()),
                   wide.data(), span);
  return wide;
}

// blas.h's row-major gemm as gemm.cu runs it: the K = 0 kernel on the
// emulator, or the mapped call on the cuBLAS model; under --precision bf16
// (float32) on operands rounded as gemm.cu rounds them.
template <class T>
void emulated_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                   int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                   int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {
    const int64_t total = batch * M * N;
    cuda_emu::launch(cu::scale_kernel<T>, dim3(3), dim3(cu::kBlock), 0, C, M, N, ldc, stride_c, total, beta);
    return;
  }
  std::vector<float> a16, b16;
  if constexpr (std::is_same_v<T, float>) {
    if (matmul_precision() == MatmulPrecision::Bf16) {
      const cu::GemmOperandSpans span =
          cu::gemm_operand_spans(trans_a, trans_b, M, N, K, lda, stride_a, ldb, stride_b, batch);
      a16 = bf16_operand(A, span.a);
      b16 = bf16_operand(B, span.b);
      A = a16.data(), B = b16.data();
    }
  }
  const cu::CublasGemmArgs g =
      cu::cublas_gemm_args(trans_a, trans_b, M, N, K, lda, stride_a, ldb, stride_b, ldc, stride_c, batch);
  const bool accepted = cublas_model(g.trans_first, g.trans_second, g.m, g.n, g.k, alpha, B, g.ld_first, g.stride_first,
                                     A, g.ld_second, g.stride_second, beta, C, g.ldc, g.stride_c, g.batch);
  INFO("cuBLAS args: m " << g.m << " n " << g.n << " k " << g.k << " ld " << g.ld_first << ", " << g.ld_second << ", "
                         << g.ldc);
  REQUIRE(accepted);
}

// CudaBackend::bmm with the cuBLAS model in place of cuBLAS.
template <class T>
void emulated_bmm(const Tensor& a_in, const Tensor& b_in, Tensor& out, double beta) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a_in.size(2);
  const Tensor a = cu::gemm_operand(a_in).ok ? a_in : a_in.contiguous();
  const Tensor b = cu::gemm_operand(b_in).ok ? b_in : b_in.contiguous();
  const cu::GemmOperand oa = cu::gemm_operand(a), ob = cu::gemm_operand(b);
  REQUIRE(oa.ok);
  REQUIRE(ob.ok);
  emulated_gemm<T>(oa.trans, ob.trans, M, N, K, T(1), static_cast<const T*>(a.raw_data()), oa.ld, oa.batch_stride,
                   static_cast<const T*>(b.raw_data()), ob.ld, ob.batch_stride, static_cast<T>(beta),
                   static_cast<T*>(out.raw_data()), N, M * N, B);
}

// A (batch, rows, cols) operand stored one way or another.
struct Layout {
  const char* name;
  std::function<Tensor(int64_t, int64_t, int64_t, Rng&, DType)> make;
};

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> all = {
      {"row-major",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({n, r, c}, g, dt);
       }},
      {"column-major",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({n, c, r}, g, dt).transpose(1, 2);
       }},
      {"padded rows",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({n, r, c + 3}, g, dt).narrow(2, 1, c);
       }},
      {"padded columns",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({n, c, r + 2}, g, dt).narrow(2, 2, r).transpose(1, 2);
       }},
      {"every other element (copied dense)",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({n, r, 2 * c}, g, dt).slice(2, 0, 2 * c, 2);
       }},
      {"batch-interleaved",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({r, n, c}, g, dt).permute({1, 0, 2});
       }},
      {"broadcast columns (copied dense)",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({n, r, 1}, g, dt).expand({n, r, c});
       }},
      {"expanded batch (stride 0)",
       [](int64_t n, int64_t r, int64_t c, Rng& g, DType dt) {
         return Tensor::randn({1, r, c}, g, dt).expand({n, r, c});
       }},
  };
  return all;
}

template <class T>
void check_bmm(DType dt, double rtol) {
  INFO(dtype_name(dt));
  Backend& cpu = backend_for(Device::cpu());
  Rng gen(41);
  struct Size {
    int64_t B, M, K, N;
  };
  const Size sizes[] = {{3, 5, 7, 4}, {2, 1, 6, 3}, {2, 4, 1, 5}, {2, 5, 3, 1},
                        {1, 1, 1, 1}, {3, 4, 0, 5}, {2, 0, 3, 4}};
  for (const Size& s : sizes)
    for (const Layout& la : layouts())
      for (const Layout& lb : layouts())
        for (const bool broadcast_a : {false, true})
          for (const double beta : {0.0, 0.5}) {
            INFO("B " << s.B << " M " << s.M << " K " << s.K << " N " << s.N << ", a " << la.name
                      << (broadcast_a ? " (batch 1)" : "") << ", b " << lb.name << ", beta " << beta);
            const Tensor a = la.make(broadcast_a ? 1 : s.B, s.M, s.K, gen, dt);
            const Tensor b = lb.make(s.B, s.K, s.N, gen, dt);
            const Tensor init = Tensor::randn({s.B, s.M, s.N}, gen, dt);
            Tensor want = init.clone();
            cpu.bmm(a.contiguous(), b.contiguous(), want, beta);  // its own layouts are not under test
            Tensor got = beta == 0.0 ? Tensor::full({s.B, s.M, s.N}, NAN, dt) : init.clone();
            emulated_bmm<T>(a, b, got, beta);
            CHECK_CLOSE(got, want, rtol, rtol);
          }
}

TEST_CASE("cuda gemm plan: bmm's cuBLAS call equals the CPU bmm for every operand layout", "[gemm][cuda_emu]") {
  check_bmm<double>(DType::F64, 1e-12);
  check_bmm<float>(DType::F32, 1e-5);
}

// --precision bf16 rounds each operand's span into a temporary of the same
// layout: every element cuBLAS reads must be in it (a read past it gives NaN
// here), rounded as the CPU backend's emulation rounds it.
TEST_CASE("cuda gemm plan: bf16 operands cover every element cuBLAS reads, rounded as on the CPU", "[gemm][cuda_emu]") {
  const MatmulPrecisionScope bf16(MatmulPrecision::Bf16);
  check_bmm<float>(DType::F32, 1e-5);
}

TEST_CASE("cuda gemm plan: an operand with both inner strides above 1 is copied dense", "[gemm][cuda_emu]") {
  CHECK_FALSE(cu::gemm_operand(2, 3, 4, 24, 8, 2).ok);
  const cu::GemmOperand row = cu::gemm_operand(2, 3, 4, 12, 4, 1);
  CHECK((row.ok && !row.trans && row.ld == 4 && row.batch_stride == 12));
  const cu::GemmOperand col = cu::gemm_operand(2, 3, 4, 12, 1, 3);
  CHECK((col.ok && col.trans && col.ld == 3 && col.batch_stride == 12));
  CHECK(cu::gemm_operand(1, 3, 4, 12, 4, 1).batch_stride == 0);
  // Rows that overlap (row stride below the row length) are not a matrix
  // cuBLAS can read.
  CHECK_FALSE(cu::gemm_operand(2, 3, 4, 12, 2, 1).ok);
}

// blas.h's contract: a stored matrix of one row may carry any row stride
// (there is no second row); cuBLAS still wants its leading dimension at
// least the column-major view's row count.
TEST_CASE("cuda gemm plan: a stored matrix of one row may carry any row stride", "[gemm][cuda_emu]") {
  Rng gen(43);
  const DType dt = DType::F64;
  const int64_t M = 4, K = 5, N = 3;
  SECTION("A of one row (M = 1)") {
    const Tensor a = Tensor::randn({1, 1, K}, gen, dt), b = Tensor::randn({1, K, N}, gen, dt);
    Tensor c = Tensor::full({1, 1, N}, NAN, dt);
    emulated_gemm<double>(false, false, 1, N, K, 1.0, a.data<double>(), 1, 0, b.data<double>(), N, 0, 0.0,
                          c.data<double>(), N, N, 1);
    CHECK_CLOSE(c, bmm(a, b), 1e-12, 1e-12);
  }
  SECTION("B of one row (K = 1)") {
    const Tensor a = Tensor::randn({1, M, 1}, gen, dt), b = Tensor::randn({1, 1, N}, gen, dt);
    Tensor c = Tensor::full({1, M, N}, NAN, dt);
    emulated_gemm<double>(false, false, M, N, 1, 1.0, a.data<double>(), 1, 0, b.data<double>(), 1, 0, 0.0,
                          c.data<double>(), N, M * N, 1);
    CHECK_CLOSE(c, bmm(a, b), 1e-12, 1e-12);
  }
  SECTION("transposed operands of one stored row (A^T with K = 1, B^T with N = 1)") {
    const Tensor at = Tensor::randn({1, 1, M}, gen, dt), bt = Tensor::randn({1, 1, 1}, gen, dt);
    Tensor c = Tensor::full({1, M, 1}, NAN, dt);
    emulated_gemm<double>(true, true, M, 1, 1, 1.0, at.data<double>(), 1, 0, bt.data<double>(), 1, 0, 0.0,
                          c.data<double>(), 1, M, 1);
    CHECK_CLOSE(c, bmm(at.transpose(1, 2), bt.transpose(1, 2)), 1e-12, 1e-12);
  }
}

// The unfused attention's calls (kernels/cuda/attention.cu), one batch
// element per call there, here all of them: S = Q K^T, O = P V and the
// backward's dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q.
TEST_CASE("cuda gemm plan: the unfused attention's GEMMs", "[gemm][cuda_emu]") {
  Rng gen(42);
  const int64_t B = 2, N = 13, S = 5, d = 3, dv = 7;
  const DType dt = DType::F64;
  const Tensor q = Tensor::randn({B, N, d}, gen, dt), k = Tensor::randn({B, S, d}, gen, dt);
  const Tensor v = Tensor::randn({B, S, dv}, gen, dt), p = Tensor::randn({B, N, S}, gen, dt);
  const Tensor go = Tensor::randn({B, N, dv}, gen, dt);
  auto run = [&](bool ta, bool tb, int64_t M, int64_t Nn, int64_t K, const Tensor& a, int64_t lda, const Tensor& b,
                 int64_t ldb) {
    Tensor c = Tensor::full({B, M, Nn}, NAN, dt);
    emulated_gemm<double>(ta, tb, M, Nn, K, 1.0, a.data<double>(), lda, a.size(1) * a.size(2), b.data<double>(), ldb,
                          b.size(1) * b.size(2), 0.0, c.data<double>(), Nn, M * Nn, B);
    return c;
  };
  CHECK_CLOSE(run(false, true, N, S, d, q, d, k, d), bmm(q, k.transpose(1, 2)), 1e-12, 1e-12);
  CHECK_CLOSE(run(false, false, N, dv, S, p, S, v, dv), bmm(p, v), 1e-12, 1e-12);
  CHECK_CLOSE(run(true, false, S, dv, N, p, S, go, dv), bmm(p.transpose(1, 2), go), 1e-12, 1e-12);
  CHECK_CLOSE(run(false, true, N, S, dv, go, dv, v, dv), bmm(go, v.transpose(1, 2)), 1e-12, 1e-12);
  CHECK_CLOSE(run(false, false, N, d, S, p, S, k, d), bmm(p, k), 1e-12, 1e-12);
  CHECK_CLOSE(run(true, false, S, d, N, p, S, q, d), bmm(p.transpose(1, 2), q), 1e-12, 1e-12);
}

}  // namespace
