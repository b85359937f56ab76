// The attention kernels, CUDA vs CPU, at the Backend level: out, lse and the
// attention map forward, and dq, dk, dv backward, on odd sizes, through both
// CUDA paths (fused: the default for float32; unfused: selected, and always
// for float64 and the map); which path runs (told apart by the workspaces
// each allocates); a forward of one path paired with a backward of the
// other; and the batch-chunked unfused path (a tiny score workspace forces
// one batch per chunk). The op front end is in test_cuda_attention_op.cpp.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {
struct Sizes {
  int64_t B, N, S, d, dv;
};

// Input scales that keep scores and dP = dO V^T of order one as d and dv
// grow, so that the float32 error stays near 1e-6 against the 1e-5 bound
// (unit-variance inputs at d = 128 or dv = 200 put fp32 rounding in the
// scores and in dP - D near 1e-5 by themselves, whichever path runs).
double qk_scale(int64_t d) { return std::min(0.7, std::pow(double(d), -0.25)); }
double v_scale(int64_t dv) { return std::min(1.0, 2.0 * std::pow(double(dv), -0.25)); }

void check_attention(const Sizes& z, Rng& gen, DType dt, AttentionImpl impl) {
  INFO(dtype_name(dt) << " " << attention_impl_name(impl) << " B " << z.B << " N " << z.N << " S " << z.S << " d "
                      << z.d << " dv " << z.dv);
  AttentionImplScope scope(impl);
  Pair q = normal({z.B, z.N, z.d}, gen, dt, qk_scale(z.d)), k = normal({z.B, z.S, z.d}, gen, dt, qk_scale(z.d));
  Pair v = normal({z.B, z.S, z.dv}, gen, dt, v_scale(z.dv));
  Pair out = outputs({z.B, z.N, z.dv}, dt), lse = outputs({z.B, z.N}, dt), map = outputs({z.B, z.N, z.S}, dt);
  // With the map: always the unfused path (only it materialises the map).
  cpu().attention_forward(q.cpu, k.cpu, v.cpu, out.cpu, lse.cpu, &map.cpu);
  gpu().attention_forward(q.gpu, k.gpu, v.gpu, out.gpu, lse.gpu, &map.gpu);
  REQUIRE_PARITY(out.gpu, out.cpu, tol_for(dt));
  REQUIRE_PARITY(lse.gpu, lse.cpu, tol_for(dt));
  REQUIRE_PARITY(map.gpu, map.cpu, tol_for(dt));
  // Without the map: the selected path.
  Pair out2 = outputs({z.B, z.N, z.dv}, dt), lse2 = outputs({z.B, z.N}, dt);
  gpu().attention_forward(q.gpu, k.gpu, v.gpu, out2.gpu, lse2.gpu, nullptr);
  REQUIRE_PARITY(out2.gpu, out.cpu, tol_for(dt));
  REQUIRE_PARITY(lse2.gpu, lse.cpu, tol_for(dt));
  // Backward from the CPU's forward results.
  Pair o = from_values(out.cpu.to_vector(), out.cpu.shape(), dt);
  Pair l = from_values(lse.cpu.to_vector(), lse.cpu.shape(), dt);
  Pair go = normal({z.B, z.N, z.dv}, gen, dt, v_scale(z.dv));
  Pair gq = outputs(q.cpu.shape(), dt), gk = outputs(k.cpu.shape(), dt), gv = outputs(v.cpu.shape(), dt);
  cpu().attention_backward(q.cpu, k.cpu, v.cpu, o.cpu, l.cpu, go.cpu, gq.cpu, gk.cpu, gv.cpu);
  gpu().attention_backward(q.gpu, k.gpu, v.gpu, o.gpu, l.gpu, go.gpu, gq.gpu, gk.gpu, gv.gpu);
  REQUIRE_PARITY(gq.gpu, gq.cpu, tol_for(dt));
  REQUIRE_PARITY(gk.gpu, gk.cpu, tol_for(dt));
  REQUIRE_PARITY(gv.gpu, gv.cpu, tol_for(dt));
}

const std::vector<Sizes>& small_sizes() {
  static const std::vector<Sizes> s{
      {2, 13, 7, 5, 6},      // odd everything
      {1, 1, 1, 1, 1},       // one query, one key
      {3, 64, 16, 8, 32},    // N a tile multiple, S = N / 4
      {2, 37, 129, 3, 9},    // more keys than queries, S past two key tiles
      {2, 77, 19, 16, 40},   // N off the tiles, S = N / 4, d != dv
      {1, 70, 65, 40, 150},  // padded d (64), two dv tiles of 128
  };
  return s;
}
}  // namespace

TEST_CASE("cuda attention forward and backward match the cpu", "[cuda][attention]") {
  Rng gen(91);
  for (AttentionImpl impl : attention_impls())
    for (DType dt : float_dtypes())
      for (const Sizes& z : small_sizes()) check_attention(z, gen, dt, impl);
}

TEST_CASE("cuda attention takes the fused path for float32 unless unfused is selected", "[cuda][attention]") {
  // The unfused forward allocates a score workspace, its backward P, dP and D;
  // the fused forward allocates nothing, its backward only D. Inputs and
  // outputs are contiguous, so no dense copies are made.
  if (std::getenv("SAGAN_CUDA_ATTENTION") == nullptr) CHECK(cuda_attention_impl() == AttentionImpl::Fused);
  Rng gen(93);
  auto count = [&](const Sizes& z, DType dt, AttentionImpl impl, int64_t want_fwd, int64_t want_bwd) {
    INFO(dtype_name(dt) << " " << attention_impl_name(impl) << " d " << z.d << " dv " << z.dv);
    AttentionImplScope scope(impl);
    Pair q = normal({z.B, z.N, z.d}, gen, dt, 0.7), k = normal({z.B, z.S, z.d}, gen, dt, 0.7);
    Pair v = normal({z.B, z.S, z.dv}, gen, dt), go = normal({z.B, z.N, z.dv}, gen, dt);
    Pair out = outputs({z.B, z.N, z.dv}, dt), lse = outputs({z.B, z.N}, dt);
    Pair gq = outputs(q.cpu.shape(), dt), gk = outputs(k.cpu.shape(), dt), gv = outputs(v.cpu.shape(), dt);
    CHECK(allocations_during([&] { gpu().attention_forward(q.gpu, k.gpu, v.gpu, out.gpu, lse.gpu, nullptr); }) ==
          want_fwd);
    CHECK(allocations_during([&] {
            gpu().attention_backward(q.gpu, k.gpu, v.gpu, out.gpu, lse.gpu, go.gpu, gq.gpu, gk.gpu, gv.gpu);
          }) == want_bwd);
    gpu().synchronize();
  };
  const Sizes z{2, 77, 19, 8, 24};
  count(z, DType::F32, AttentionImpl::Fused, 0, 1);
  count(z, DType::F32, AttentionImpl::Unfused, 1, 3);
  count(z, DType::F64, AttentionImpl::Fused, 1, 3);                  // float64: always unfused
  count({1, 9, 5, 129, 3}, DType::F32, AttentionImpl::Fused, 1, 3);  // d > 128: unfused
  count({1, 9, 5, 128, 3}, DType::F32, AttentionImpl::Fused, 0, 1);  // d = 128: fused
}

TEST_CASE("cuda attention: a forward of either path pairs with a backward of either", "[cuda][attention]") {
  Rng gen(94);
  const Sizes z{2, 77, 19, 8, 24};
  const DType dt = DType::F32;
  Pair q = normal({z.B, z.N, z.d}, gen, dt, 0.7), k = normal({z.B, z.S, z.d}, gen, dt, 0.7);
  Pair v = normal({z.B, z.S, z.dv}, gen, dt), go = normal({z.B, z.N, z.dv}, gen, dt);
  Pair out = outputs({z.B, z.N, z.dv}, dt), lse = outputs({z.B, z.N}, dt);
  Pair gq = outputs(q.cpu.shape(), dt), gk = outputs(k.cpu.shape(), dt), gv = outputs(v.cpu.shape(), dt);
  cpu().attention_forward(q.cpu, k.cpu, v.cpu, out.cpu, lse.cpu, nullptr);
  cpu().attention_backward(q.cpu, k.cpu, v.cpu, out.cpu, lse.cpu, go.cpu, gq.cpu, gk.cpu, gv.cpu);
  for (AttentionImpl fwd : attention_impls())
    for (AttentionImpl bwd : attention_impls()) {
      INFO("forward " << attention_impl_name(fwd) << ", backward " << attention_impl_name(bwd));
      Tensor o = poisoned(out.cpu.shape(), dt, dev()), l = poisoned(lse.cpu.shape(), dt, dev());
      {
        AttentionImplScope scope(fwd);
        gpu().attention_forward(q.gpu, k.gpu, v.gpu, o, l, nullptr);
      }
      Tensor dq = poisoned(q.cpu.shape(), dt, dev()), dk = poisoned(k.cpu.shape(), dt, dev()),
             dv = poisoned(v.cpu.shape(), dt, dev());
      {
        AttentionImplScope scope(bwd);
        gpu().attention_backward(q.gpu, k.gpu, v.gpu, o, l, go.gpu, dq, dk, dv);
      }
      REQUIRE_PARITY(dq, gq.cpu, kTolF32);
      REQUIRE_PARITY(dk, gk.cpu, kTolF32);
      REQUIRE_PARITY(dv, gv.cpu, kTolF32);
    }
}

TEST_CASE("cuda attention processes batches in chunks when the workspace is small", "[cuda][attention]") {
  Rng gen(92);
  set_cuda_attention_workspace_limit(1);  // one batch element per chunk
  try {
    // Chunks exist only in the unfused path.
    for (DType dt : float_dtypes()) check_attention({3, 11, 9, 4, 5}, gen, dt, AttentionImpl::Unfused);
  } catch (...) {
    set_cuda_attention_workspace_limit(0);
    throw;
  }
  set_cuda_attention_workspace_limit(0);
}

TEST_CASE("attention implementation names parse and bad ones are rejected", "[cuda][attention]") {
  CHECK(parse_attention_impl("fused", "x") == AttentionImpl::Fused);
  CHECK(parse_attention_impl("unfused", "x") == AttentionImpl::Unfused);
  CHECK(std::string(attention_impl_name(AttentionImpl::Unfused)) == "unfused");
  try {
    parse_attention_impl("flash", "environment variable SAGAN_CUDA_ATTENTION");
    FAIL("no error");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("SAGAN_CUDA_ATTENTION") != std::string::npos);
    CHECK(m.find("'flash'") != std::string::npos);
  }
}
