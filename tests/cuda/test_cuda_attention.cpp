// The unfused attention path, CUDA vs CPU: out, lse and the attention map
// forward, and dq, dk, dv backward, on odd sizes; a larger case; and the
// batch-chunked path (a tiny score workspace forces one batch per chunk).
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
struct Sizes {
  int64_t B, N, S, d, dv;
};

void check_attention(const Sizes& z, Generator& gen, DType dt) {
  INFO(dtype_name(dt) << " B " << z.B << " N " << z.N << " S " << z.S << " d " << z.d << " dv " << z.dv);
  Pair q = normal({z.B, z.N, z.d}, gen, dt, 0.7), k = normal({z.B, z.S, z.d}, gen, dt, 0.7);
  Pair v = normal({z.B, z.S, z.dv}, gen, dt);
  Pair out = outputs({z.B, z.N, z.dv}, dt), lse = outputs({z.B, z.N}, dt), map = outputs({z.B, z.N, z.S}, dt);
  cpu().attention_forward(q.cpu, k.cpu, v.cpu, out.cpu, lse.cpu, &map.cpu);
  gpu().attention_forward(q.gpu, k.gpu, v.gpu, out.gpu, lse.gpu, &map.gpu);
  REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
  REQUIRE_PARITY(lse.gpu, lse.cpu, tol_for(dt));
  REQUIRE_PARITY(map.gpu, map.cpu, tol_for(dt));
  // Without the map: the score workspace path.
  Pair out2 = outputs({z.B, z.N, z.dv}, dt), lse2 = outputs({z.B, z.N}, dt);
  gpu().attention_forward(q.gpu, k.gpu, v.gpu, out2.gpu, lse2.gpu, nullptr);
  REQUIRE_PARITY(out2.gpu, out.cpu, tol_for(dt));
  REQUIRE_PARITY(lse2.gpu, lse.cpu, tol_for(dt));
  // Backward from the CPU's forward results.
  Pair o = from_values(out.cpu.to_vector(), out.cpu.shape(), dt);
  Pair l = from_values(lse.cpu.to_vector(), lse.cpu.shape(), dt);
  Pair go = normal({z.B, z.N, z.dv}, gen, dt);
  Pair gq = outputs(q.cpu.shape(), dt), gk = outputs(k.cpu.shape(), dt), gv = outputs(v.cpu.shape(), dt);
  cpu().attention_backward(q.cpu, k.cpu, v.cpu, o.cpu, l.cpu, go.cpu, gq.cpu, gk.cpu, gv.cpu);
  gpu().attention_backward(q.gpu, k.gpu, v.gpu, o.gpu, l.gpu, go.gpu, gq.gpu, gk.gpu, gv.gpu);
  REQUIRE_PARITY(gq.gpu, gq.cpu, tol_for(dt));
  REQUIRE_PARITY(gk.gpu, gk.cpu, tol_for(dt));
  REQUIRE_PARITY(gv.gpu, gv.cpu, tol_for(dt));
}
}  // namespace

TEST_CASE("cuda attention forward and backward match the cpu", "[cuda][attention]") {
  Generator gen(91);
  for (DType dt : float_dtypes()) {
    check_attention({2, 13, 7, 5, 6}, gen, dt);
    check_attention({1, 1, 1, 1, 1}, gen, dt);
    check_attention({3, 64, 16, 8, 32}, gen, dt);
    check_attention({2, 37, 129, 3, 9}, gen, dt);
  }
}

TEST_CASE("cuda attention processes batches in chunks when the workspace is small", "[cuda][attention]") {
  Generator gen(92);
  set_cuda_attention_workspace_limit(1);  // one batch element per chunk
  try {
    for (DType dt : float_dtypes()) check_attention({3, 11, 9, 4, 5}, gen, dt);
  } catch (...) {
    set_cuda_attention_workspace_limit(0);
    throw;
  }
  set_cuda_attention_workspace_limit(0);
}
