// bmm, CUDA (cuBLAS) vs CPU: every combination of row- and column-major
// operands, batch broadcast (a batch of 1 and a stride-0 expand), operands
// cuBLAS cannot read in place, beta 0 (NaN-poisoned output) and beta != 0,
// odd and larger sizes; float64, float32 and the TF32 path.
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

// A (batch, rows, cols) operand in one of several layouts.
Pair operand(int layout, int64_t batch, int64_t rows, int64_t cols, Rng& gen, DType dt) {
  switch (layout) {
    case 0:  // row-major
      return normal({batch, rows, cols}, gen, dt);
    case 1:  // column-major
      return view(normal({batch, cols, rows}, gen, dt), [](const Tensor& t) { return t.transpose(1, 2); });
    case 2:  // padded rows (row stride > cols)
      return view(normal({batch, rows, cols + 3}, gen, dt), [cols](const Tensor& t) { return t.slice(2, 0, cols); });
    case 3:  // batch broadcast by expand (batch stride 0)
      return view(normal({1, rows, cols}, gen, dt), [batch, rows, cols](const Tensor& t) {
        return t.expand({batch, rows, cols});
      });
    default:  // no unit stride: needs a dense copy first
      return view(normal({batch, rows, 2 * cols}, gen, dt),
                  [](const Tensor& t) { return t.slice(2, 0, t.size(2), 2); });
  }
}

double run_bmm(int la, int lb, int64_t B, int64_t M, int64_t K, int64_t N, double beta, Rng& gen, DType dt,
               bool a_batch_one = false) {
  Pair a = operand(la, a_batch_one ? 1 : B, M, K, gen, dt);
  Pair b = operand(lb, B, K, N, gen, dt);
  Pair out = beta == 0.0 ? outputs({B, M, N}, dt) : normal({B, M, N}, gen, dt);
  cpu().bmm(a.cpu, b.cpu, out.cpu, beta);
  gpu().bmm(a.gpu, b.gpu, out.gpu, beta);
  return compare(out.gpu, out.cpu, tol_for(dt)).worst;
}

}  // namespace

TEST_CASE("cuda bmm matches the cpu for every operand layout", "[cuda][gemm]") {
  Rng gen(41);
  for (DType dt : float_dtypes()) {
    for (int la = 0; la < 5; ++la) {
      for (int lb = 0; lb < 5; ++lb) {
        for (double beta : {0.0, 0.5}) {
          INFO(dtype_name(dt) << " layouts a " << la << ", b " << lb << ", beta " << beta);
          REQUIRE(run_bmm(la, lb, 3, 5, 7, 9, beta, gen, dt) <= tol_for(dt));
        }
      }
    }
  }
}

TEST_CASE("cuda bmm broadcasts a batch of one and handles edge sizes", "[cuda][gemm]") {
  Rng gen(42);
  for (DType dt : float_dtypes()) {
    INFO(dtype_name(dt));
    REQUIRE(run_bmm(0, 1, 4, 6, 5, 3, 0.0, gen, dt, /*a_batch_one=*/true) <= tol_for(dt));
    REQUIRE(run_bmm(1, 0, 4, 6, 5, 3, 1.0, gen, dt, /*a_batch_one=*/true) <= tol_for(dt));
    // vectors: M = 1, N = 1, K = 1
    REQUIRE(run_bmm(0, 0, 2, 1, 9, 7, 0.0, gen, dt) <= tol_for(dt));
    REQUIRE(run_bmm(1, 1, 2, 7, 9, 1, 0.0, gen, dt) <= tol_for(dt));
    REQUIRE(run_bmm(0, 1, 3, 5, 1, 4, 0.0, gen, dt) <= tol_for(dt));
    // larger, tile-crossing sizes
    REQUIRE(run_bmm(0, 0, 2, 130, 257, 65, 0.0, gen, dt) <= tol_for(dt));
    REQUIRE(run_bmm(1, 1, 2, 129, 64, 131, 0.25, gen, dt) <= tol_for(dt));
    // K = 0: out = beta * out (zeros when beta = 0)
    Pair a = normal({2, 3, 0}, gen, dt), b = normal({2, 0, 4}, gen, dt);
    Pair out = outputs({2, 3, 4}, dt);
    cpu().bmm(a.cpu, b.cpu, out.cpu, 0.0);
    gpu().bmm(a.gpu, b.gpu, out.gpu, 0.0);
    REQUIRE_PARITY(out.gpu, out.cpu, 0.0);
  }
}

TEST_CASE("cuda bmm in TF32 stays within 1e-3 and is off by default", "[cuda][gemm][tf32]") {
  Rng gen(43);
  REQUIRE_FALSE(cuda_tf32_enabled());
  Pair a = normal({2, 96, 160}, gen, DType::F32), b = normal({2, 160, 80}, gen, DType::F32);
  Pair out = outputs({2, 96, 80}, DType::F32);
  cpu().bmm(a.cpu, b.cpu, out.cpu, 0.0);
  gpu().bmm(a.gpu, b.gpu, out.gpu, 0.0);
  const double fp32 = normwise(out.gpu, out.cpu);
  INFO("float32 normwise error " << fp32);
  REQUIRE(fp32 <= kTolF32);
  Tensor tf = poisoned({2, 96, 80}, DType::F32, dev());
  {
    Tf32Scope on(true);
    gpu().bmm(a.gpu, b.gpu, tf, 0.0);
  }
  const double tf32 = normwise(tf, out.cpu);
  INFO("TF32 normwise error " << tf32 << " (float32: " << fp32 << ")");
  REQUIRE(tf32 <= kTolTF32);
  if (tf32 <= 10 * fp32) WARN("TF32 result is as exact as float32: cuBLAS did not pick a TF32 kernel here");
  REQUIRE_FALSE(cuda_tf32_enabled());
}
