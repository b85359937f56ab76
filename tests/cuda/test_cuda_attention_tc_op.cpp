// The attention op front end (sagan::attention with autograd) on CUDA
// through the tensor-core implementations (set_cuda_attention_impl:
// tc-fp32, tc-tf32, tc-bf16) against the CPU in float64 from the same
// rounded inputs; their forwards paired with the other paths' backwards
// (the shared lse convention); which path runs (told apart by the
// workspaces each allocates); and the parsing of the names. Bounds per
// precision as in tests/cuda/test_flash_attention_tc.cpp, with scores of
// order one (q, k scaled by d^(-1/4)), except fp32's: 1e-5, not 3e-5, as
// at most 70 keys leave little room for truncating accumulation. Skips
// without a device.
#include <cmath>
#include <vector>

#include "sagan/core/ops.h"
#include "sagan/kernels/cuda/flash_attention.h"
#include "sagan/kernels/cuda/flash_attention_tc.h"
#include "sagan/kernels/cuda/settings.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;

namespace {

const AttentionImpl kTcImpls[] = {AttentionImpl::TcF32, AttentionImpl::TcTf32, AttentionImpl::TcBf16};

double tc_tolerance(AttentionImpl impl) {
  return impl == AttentionImpl::TcF32 ? 1e-5 : impl == AttentionImpl::TcTf32 ? 5e-3 : 4e-2;
}

struct OpCase {
  int64_t B, N, S, d, dv;
};

// Random q, k (scaled 0.7), v and the output gradient go of one attention
// call, drawn in that order, on the CPU and the GPU.
struct Inputs {
  Pair q, k, v, go;
};
Inputs draw_inputs(Rng& gen, DType dt, int64_t B, int64_t N, int64_t S, int64_t d, int64_t dv) {
  return {normal({B, N, d}, gen, dt, 0.7), normal({B, S, d}, gen, dt, 0.7), normal({B, S, dv}, gen, dt),
          normal({B, N, dv}, gen, dt)};
}

void check_op(const OpCase& z, Rng& gen, AttentionImpl impl) {
  INFO(attention_impl_name(impl) << " B " << z.B << " N " << z.N << " S " << z.S << " d " << z.d << " dv " << z.dv);
  AttentionImplScope scope(impl);
  const double tol = tc_tolerance(impl);
  const DType dt = DType::F32;
  const double qs = std::pow(double(z.d), -0.25), vs = std::pow(double(z.dv), -0.25);
  Pair q = normal({z.B, z.N, z.d}, gen, dt, qs), k = normal({z.B, z.S, z.d}, gen, dt, qs);
  Pair v = normal({z.B, z.S, z.dv}, gen, dt, vs), g = normal({z.B, z.N, z.dv}, gen, dt, vs);
  Tensor qc = q.cpu.detach(), kc = k.cpu.detach(), vc = v.cpu.detach();
  Tensor qg = q.gpu.detach(), kg = k.gpu.detach(), vg = v.gpu.detach();
  for (Tensor* t : {&qc, &kc, &vc, &qg, &kg, &vg}) t->set_requires_grad(true);
  AttentionResult rc = attention(qc, kc, vc);
  poison_allocator({{z.B, z.N, z.dv}, {z.B, z.N}}, dt);
  AttentionResult rg = attention(qg, kg, vg);
  REQUIRE_PARITY(rg.out, rc.out, tol);
  rc.out.backward(g.cpu);
  poison_allocator({{z.B, z.N, z.d}, {z.B, z.S, z.d}, {z.B, z.S, z.dv}}, dt);
  rg.out.backward(g.gpu);
  REQUIRE_PARITY(qg.grad(), qc.grad(), tol);
  REQUIRE_PARITY(kg.grad(), kc.grad(), tol);
  REQUIRE_PARITY(vg.grad(), vc.grad(), tol);
}

}  // namespace

TEST_CASE("cuda attention op matches the cpu through the tensor-core paths", "[cuda][attention_tc]") {
  Rng gen(311);
  const OpCase cases[] = {{2, 77, 19, 8, 24},   {1, 132, 33, 16, 64}, {3, 64, 16, 2, 8},
                          {2, 200, 50, 40, 20}, {1, 65, 70, 32, 200}, {1, 1, 1, 1, 1}};
  for (AttentionImpl impl : kTcImpls)
    for (const OpCase& z : cases) check_op(z, gen, impl);
}

TEST_CASE("cuda attention: tensor-core forwards and backwards pair with the other paths", "[cuda][attention_tc]") {
  Rng gen(312);
  const int64_t B = 2, N = 77, S = 19, d = 8, dv = 24;
  const DType dt = DType::F32;
  const auto [q, k, v, go] = draw_inputs(gen, dt, B, N, S, d, dv);
  Pair out = outputs({B, N, dv}, dt), lse = outputs({B, N}, dt);
  Pair gq = outputs(q.cpu.shape(), dt), gk = outputs(k.cpu.shape(), dt), gv = outputs(v.cpu.shape(), dt);
  cpu().attention_forward(q.cpu, k.cpu, v.cpu, out.cpu, lse.cpu, nullptr);
  cpu().attention_backward(q.cpu, k.cpu, v.cpu, out.cpu, lse.cpu, go.cpu, gq.cpu, gk.cpu, gv.cpu);
  const std::pair<AttentionImpl, AttentionImpl> pairs[] = {{AttentionImpl::TcF32, AttentionImpl::Unfused},
                                                           {AttentionImpl::TcF32, AttentionImpl::Fused},
                                                           {AttentionImpl::Unfused, AttentionImpl::TcF32},
                                                           {AttentionImpl::Fused, AttentionImpl::TcF32}};
  for (const auto& [fwd, bwd] : pairs) {
    INFO("forward " << attention_impl_name(fwd) << ", backward " << attention_impl_name(bwd));
    Tensor o = poisoned(out.cpu.shape(), dt, dev()), l = poisoned(lse.cpu.shape(), dt, dev());
    {
      AttentionImplScope scope(fwd);
      gpu().attention_forward(q.gpu, k.gpu, v.gpu, o, l, nullptr);
    }
    Tensor dq = poisoned(q.cpu.shape(), dt, dev()), dk = poisoned(k.cpu.shape(), dt, dev()),
           dvt = poisoned(v.cpu.shape(), dt, dev());
    {
      AttentionImplScope scope(bwd);
      gpu().attention_backward(q.gpu, k.gpu, v.gpu, o, l, go.gpu, dq, dk, dvt);
    }
    REQUIRE_PARITY(dq, gq.cpu, kTolF32);
    REQUIRE_PARITY(dk, gk.cpu, kTolF32);
    REQUIRE_PARITY(dvt, gv.cpu, kTolF32);
  }
}

TEST_CASE("cuda attention: the tensor-core paths run where selected and fall back elsewhere", "[cuda][attention_tc]") {
  // Forward: no workspace; backward: one (D and partial sums). float64, a
  // requested map and d > 128 take the unfused path (1 and 3 workspaces).
  Rng gen(313);
  for (AttentionImpl impl : kTcImpls) {
    AttentionImplScope scope(impl);
    auto count = [&](int64_t B, int64_t N, int64_t S, int64_t d, int64_t dv, DType dt, int64_t want_fwd,
                     int64_t want_bwd) {
      INFO(attention_impl_name(impl) << " " << dtype_name(dt) << " d " << d);
      const auto [q, k, v, go] = draw_inputs(gen, dt, B, N, S, d, dv);
      Pair out = outputs({B, N, dv}, dt), lse = outputs({B, N}, dt);
      Pair gq = outputs(q.cpu.shape(), dt), gk = outputs(k.cpu.shape(), dt), gv = outputs(v.cpu.shape(), dt);
      CHECK(allocations_during([&] { gpu().attention_forward(q.gpu, k.gpu, v.gpu, out.gpu, lse.gpu, nullptr); }) ==
            want_fwd);
      CHECK(allocations_during([&] {
              gpu().attention_backward(q.gpu, k.gpu, v.gpu, out.gpu, lse.gpu, go.gpu, gq.gpu, gk.gpu, gv.gpu);
            }) == want_bwd);
      gpu().synchronize();
    };
    count(2, 77, 19, 8, 24, DType::F32, 0, 1);
    count(2, 77, 19, 8, 24, DType::F64, 1, 3);
    count(1, 9, 5, 129, 3, DType::F32, 1, 3);
    count(1, 9, 5, 128, 3, DType::F32, 0, 1);
  }
}

TEST_CASE("cuda attention: each selection runs its own kernels, bit for bit", "[cuda][attention_tc]") {
  // The workspace counts above cannot tell the fp32 fused kernels from the
  // tensor-core ones (0 forward, 1 backward each), and every tensor-core
  // bound passes the fused path's error: here the backend's results must
  // equal, bit for bit, a direct call of the kernels the selection names,
  // and differ from the other precisions' (the inputs are not
  // bf16-representable, so rounding them changes the result).
  Rng gen(317);
  const int B = 2, N = 77, S = 19, d = 8, dv = 24;
  const DType dt = DType::F32;
  const auto [q, k, v, go] = draw_inputs(gen, dt, B, N, S, d, dv);
  struct Result {
    std::vector<double> out, lse, gq, gk, gv;
  };
  auto through_backend = [&](AttentionImpl impl) {
    AttentionImplScope scope(impl);
    Tensor out = poisoned({B, N, dv}, dt, dev()), lse = poisoned({B, N}, dt, dev());
    Tensor gq = poisoned({B, N, d}, dt, dev()), gk = poisoned({B, S, d}, dt, dev()),
           gv = poisoned({B, S, dv}, dt, dev());
    gpu().attention_forward(q.gpu, k.gpu, v.gpu, out, lse, nullptr);
    gpu().attention_backward(q.gpu, k.gpu, v.gpu, out, lse, go.gpu, gq, gk, gv);
    gpu().synchronize();
    return Result{out.to_vector(), lse.to_vector(), gq.to_vector(), gk.to_vector(), gv.to_vector()};
  };
  auto direct = [&](AttentionImpl impl) {
    Tensor out = poisoned({B, N, dv}, dt, dev()), lse = poisoned({B, N}, dt, dev());
    Tensor gq = poisoned({B, N, d}, dt, dev()), gk = poisoned({B, S, d}, dt, dev()),
           gv = poisoned({B, S, dv}, dt, dev());
    const float *qp = q.gpu.data<float>(), *kp = k.gpu.data<float>(), *vp = v.gpu.data<float>();
    if (impl == AttentionImpl::Fused) {
      const size_t bytes = fused::flash_attention_backward_workspace_bytes(B, N, S, d, dv);
      Tensor ws = poisoned({static_cast<int64_t>(bytes / sizeof(float)) + 1}, dt, dev());
      REQUIRE(fused::flash_attention_forward_f32(qp, kp, vp, out.data<float>(), lse.data<float>(), B, N, S, d, dv,
                                                 nullptr) == cudaSuccess);
      REQUIRE(fused::flash_attention_backward_f32(qp, kp, vp, out.data<float>(), lse.data<float>(),
                                                  go.gpu.data<float>(), gq.data<float>(), gk.data<float>(),
                                                  gv.data<float>(), B, N, S, d, dv, ws.data<float>(), bytes, nullptr,
                                                  true) == cudaSuccess);
    } else {
      const fused::TcPrecision p = impl == AttentionImpl::TcF32    ? fused::TcPrecision::F32
                                   : impl == AttentionImpl::TcTf32 ? fused::TcPrecision::TF32
                                                                   : fused::TcPrecision::BF16;
      const size_t bytes = fused::flash_attention_tc_backward_workspace_bytes(B, N, S, d, dv);
      Tensor ws = poisoned({static_cast<int64_t>(bytes / sizeof(float)) + 4}, dt, dev());
      REQUIRE(fused::flash_attention_tc_forward(qp, kp, vp, out.data<float>(), lse.data<float>(), B, N, S, d, dv, p,
                                                nullptr) == cudaSuccess);
      REQUIRE(fused::flash_attention_tc_backward(qp, kp, vp, out.data<float>(), lse.data<float>(), go.gpu.data<float>(),
                                                 gq.data<float>(), gk.data<float>(), gv.data<float>(), B, N, S, d, dv,
                                                 p, ws.data<float>(), bytes, nullptr) == cudaSuccess);
    }
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    return Result{out.to_vector(), lse.to_vector(), gq.to_vector(), gk.to_vector(), gv.to_vector()};
  };
  REQUIRE(cuda_deterministic());  // the fused backward's mode above
  const AttentionImpl impls[] = {AttentionImpl::Fused, AttentionImpl::TcF32, AttentionImpl::TcTf32,
                                 AttentionImpl::TcBf16};
  std::vector<Result> got;
  for (AttentionImpl impl : impls) {
    INFO(attention_impl_name(impl));
    const Result a = through_backend(impl), b = direct(impl);
    CHECK(a.out == b.out);
    CHECK(a.lse == b.lse);
    CHECK(a.gq == b.gq);
    CHECK(a.gk == b.gk);
    CHECK(a.gv == b.gv);
    got.push_back(a);
  }
  for (size_t i = 0; i < got.size(); ++i)
    for (size_t j = i + 1; j < got.size(); ++j) {
      INFO(attention_impl_name(impls[i]) << " vs " << attention_impl_name(impls[j]));
      CHECK(got[i].out != got[j].out);
    }
}

TEST_CASE("cuda attention op: the tensor-core paths at SAGAN's attention sizes", "[cuda][attention_tc_sagan]") {
  Rng gen(315);
  const OpCase cases[] = {
      {16, 256, 64, 32, 128}, {68, 1024, 256, 16, 64}, {2, 4096, 1024, 16, 64}, {2, 4096, 1024, 8, 32}};
  for (AttentionImpl impl : kTcImpls)
    for (const OpCase& z : cases) check_op(z, gen, impl);
}
