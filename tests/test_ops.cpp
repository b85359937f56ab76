// The op test registry (tests/ops/op_cases.h) on the CPU: one test case per
// op for the float64 gradient checks of all its cases ("gradcheck: <op>",
// tag [gradcheck]), and one for device parity through the CPU fallback
// ("fallback parity: <op>", tag [fallback]): a stand-in device whose backend
// keeps memory on the host, poisons every allocation with NaN and declines
// every kernel but fill and copy, so each op runs the generic fallback of
// core/backend.cpp (arguments copied to the host, the CPU kernel, results
// copied back). The same parity harness runs on real GPUs in
// tests/cuda/test_ops_parity.cpp. Plus the fallback of the in-place kernels
// (lists of tensors) that no op front end differentiates.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "sagan/core/ops.h"
#include "sagan/core/sync_free.h"
#include "sagan/kernels/cpu/cpu_backend.h"
#include "tests/ops/op_parity.h"
#include "tests/support/assertions.h"

using namespace sagan;
using namespace sagan::optest;

namespace {

// Host memory under the name cuda:0; only fill and copy are its own.
class StandInBackend final : public Backend {
 public:
  StandInBackend() : Backend(Device::cuda(0)) {
    implement<KernelId::fill, &StandInBackend::fill>();
    implement<KernelId::copy, &StandInBackend::copy>();
    // Its own, but declined like the rest until a test takes it back.
    implement<KernelId::sum, &StandInBackend::sum>();
    set_declined(KernelId::sum, true);
  }
  const char* name() const override { return "stand-in"; }
  void* allocate(size_t nbytes) override {
    void* p = std::malloc(nbytes == 0 ? 1 : nbytes);
    std::memset(p, 0xFF, nbytes);  // all-ones bytes: NaN in float32 and float64
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
  void copy_from_host(void* dst, const void* src, size_t nbytes) override { std::memcpy(dst, src, nbytes); }
  void copy_to_host(void* dst, const void* src, size_t nbytes) override { std::memcpy(dst, src, nbytes); }
  void synchronize() override {}
  // The CPU backend's own kernels (not its Backend methods, which would
  // reject tensors that are not on the CPU).
  void fill(Tensor& out, double value) { cpu_backend().fill(out, value); }
  void copy(const Tensor& src, Tensor& dst) { cpu_backend().copy(src, dst); }
  void sum(const Tensor& x, Tensor& out) {
    ++sum_calls;
    cpu_backend().sum(x, out);
  }
  int sum_calls = 0;
};

StandInBackend& stand_in() {
  static StandInBackend* be = new StandInBackend;  // never destroyed, like the real backends
  return *be;
}

// Makes the stand-in the CUDA provider for a scope (restoring the previous
// one); declared before any tensor of the test so that they all go first.
class StandInScope {
 public:
  StandInScope()
      : prev_(register_backend({DeviceType::CUDA, [] { return 1; }, [](int) -> Backend& { return stand_in(); }})) {}
  ~StandInScope() { register_backend(prev_); }
  StandInScope(const StandInScope&) = delete;
  StandInScope& operator=(const StandInScope&) = delete;

 private:
  BackendProvider prev_;
};

// Catch test cases made at static initialisation, one per registry entry.
class EntryInvoker : public Catch::ITestInvoker {
 public:
  EntryInvoker(size_t entry, void (*run)(const OpEntry&)) : entry_(entry), run_(run) {}
  void invoke() const override { run_(op_registry()[entry_]); }

 private:
  size_t entry_;
  void (*run_)(const OpEntry&);
};

void gradcheck_entry(const OpEntry& e) {
  for (const OpCase& c : e.cases) {
    if (!c.gradcheck) continue;
    INFO(e.op << " [" << c.name << "]");
    auto r = testing::gradcheck(c.fn, make_inputs(e, c, DType::F64, DType::F64, Device::cpu()));
    INFO(r.message);
    REQUIRE(r.ok);
  }
}

void fallback_parity_entry(const OpEntry& e) {
  StandInScope scope;
  for (const OpCase& c : e.cases) {
    if (!c.parity) continue;
    for (DType dt : {DType::F64, DType::F32}) require_parity(e, c, Device::cuda(0), dt, nullptr);
  }
}

[[maybe_unused]] const bool registered = [] {
  static std::deque<std::string> names;  // Catch keeps references
  for (size_t i = 0; i < op_registry().size(); ++i) {
    const std::string& op = op_registry()[i].op;
    names.push_back("gradcheck: " + op);
    names.push_back("[ops][gradcheck][" + op + "]");
    Catch::AutoReg(new EntryInvoker(i, gradcheck_entry), CATCH_INTERNAL_LINEINFO, "",
                   Catch::NameAndTags{names[names.size() - 2], names.back()});
    names.push_back("fallback parity: " + op);
    names.push_back("[ops][fallback][" + op + "]");
    Catch::AutoReg(new EntryInvoker(i, fallback_parity_entry), CATCH_INTERNAL_LINEINFO, "",
                   Catch::NameAndTags{names[names.size() - 2], names.back()});
  }
  return true;
}();

}  // namespace

TEST_CASE("the stand-in device declines every kernel but fill and copy", "[ops][fallback]") {
  StandInScope scope;
  Backend& be = backend_for(Device::cuda(0));
  REQUIRE(std::string(be.name()) == "stand-in");
  CHECK(be.implements(KernelId::fill));
  CHECK(be.implements(KernelId::copy));
  CHECK_FALSE(be.implements(KernelId::conv2d));
  CHECK_FALSE(be.implements(KernelId::adam_update));
  CHECK_FALSE(be.implements(KernelId::sum));  // its own, declined
  CHECK(backend_for(Device::cpu()).implements(KernelId::conv2d_rect));
}

TEST_CASE("a backend declines a kernel of its own and takes it back", "[ops][fallback]") {
  StandInScope scope;
  StandInBackend& be = stand_in();
  struct Redecline {  // as the other tests expect it, whatever happens here
    StandInBackend& be;
    ~Redecline() { be.set_declined(KernelId::sum, true); }
  } redecline{be};
  const Tensor x = Tensor::full({2, 3}, 1.5, DType::F64).to(Device::cuda(0));
  auto run = [&] {
    Tensor out = Tensor::empty({1, 3}, DType::F64, Device::cuda(0));
    static_cast<Backend&>(be).sum(x, out);  // the dispatch, not the member it may pick
    return out.to_vector();
  };
  const int before = be.sum_calls;
  CHECK(run() == std::vector<double>{3.0, 3.0, 3.0});  // declined: the CPU's kernel on host copies
  CHECK(be.sum_calls == before);
  be.set_declined(KernelId::sum, false);
  CHECK(be.implements(KernelId::sum));
  CHECK(run() == std::vector<double>{3.0, 3.0, 3.0});  // its own
  CHECK(be.sum_calls == before + 1);
  be.set_declined(KernelId::sum, true);
  CHECK_FALSE(be.implements(KernelId::sum));
  // What cannot be declined, and the names.
  REQUIRE_THROWS_WITH(be.set_declined(KernelId::fill, true), Catch::Contains("fill") && Catch::Contains("needs"));
  REQUIRE_THROWS_WITH(backend_for(Device::cpu()).set_declined(KernelId::conv2d, true),
                      Catch::Contains("CPU backend cannot decline"));
  CHECK(kernel_id("pool2d", "x") == KernelId::pool2d);
  REQUIRE_THROWS_WITH(kernel_id("pool3d", "SAGAN_CUDA_DECLINE"), Catch::Contains("SAGAN_CUDA_DECLINE") &&
                                                                     Catch::Contains("'pool3d'") &&
                                                                     Catch::Contains("resize_bilinear"));
}

TEST_CASE("the CPU fallback is refused inside a sync-free region, naming the kernel", "[ops][fallback]") {
  // On a GPU its host copies would wait for the device, or break a capture.
  StandInScope scope;
  const Tensor a = Tensor::ones({2, 3}, DType::F64).to(Device::cuda(0));
  const Tensor b = Tensor::ones({2, 3}, DType::F64).to(Device::cuda(0));
  CHECK_NOTHROW(add(a, b));
  SyncFreeScope region("the test region");
  REQUIRE_THROWS_WITH(
      add(a, b), Catch::Contains("add (backend stand-in has no kernel for it") && Catch::Contains("the test region"));
}

TEST_CASE("the CPU fallback copies back in-place kernels over lists of tensors", "[ops][fallback]") {
  StandInScope scope;
  Rng gen(5);
  auto pair = [&](const Shape& s) {
    Tensor c = Tensor::randn(s, gen, DType::F64);
    return std::pair<Tensor, Tensor>{c, c.to(Device::cuda(0))};
  };
  // power_iteration: u and v updated in place, a strided u included.
  auto [w0, w0d] = pair({4, 6});
  auto [w1, w1d] = pair({3, 5});
  auto [u0, u0d] = pair({4});
  auto [v0, v0d] = pair({6});
  auto [ub, ubd] = pair({2, 3});
  auto [v1, v1d] = pair({5});
  std::vector<Tensor> uc{u0, ub.select(0, 1)}, vc{v0, v1}, ud{u0d, ubd.select(0, 1)}, vd{v0d, v1d};
  power_iteration({w0, w1}, uc, vc);
  power_iteration({w0d, w1d}, ud, vd);
  for (size_t i = 0; i < 2; ++i) {
    REQUIRE_PARITY(ud[i], uc[i], 0.0);
    REQUIRE_PARITY(vd[i], vc[i], 0.0);
  }
  REQUIRE_PARITY(ubd, ub, 0.0);  // the strided u's storage saw the write
  // adam_update and ema_update: parameters and moments in place.
  auto [p, pd] = pair({3, 4});
  auto [g, gd] = pair({3, 4});
  Tensor m = Tensor::zeros({3, 4}, DType::F64), v = Tensor::zeros({3, 4}, DType::F64);
  Tensor md = m.to(Device::cuda(0)), vd2 = v.to(Device::cuda(0));
  std::vector<Tensor> ps{p}, ms{m}, vs{v}, psd{pd}, msd{md}, vsd{vd2};
  AdamHyper h;
  h.lr = 0.1;
  adam_update(ps, {g}, ms, vs, h);
  adam_update(psd, {gd}, msd, vsd, h);
  REQUIRE_PARITY(pd, p, 0.0);
  REQUIRE_PARITY(md, m, 0.0);
  REQUIRE_PARITY(vd2, v, 0.0);
  auto [e, ed] = pair({3, 4});
  std::vector<Tensor> es{e}, esd{ed};
  ema_update(es, {p}, 0.9);
  ema_update(esd, {pd}, 0.9);
  REQUIRE_PARITY(ed, e, 0.0);
  // A gate on the device goes to the host with the rest: NaN holds both back.
  Tensor closed = Tensor::scalar(std::nan(""), DType::F64).to(Device::cuda(0));
  h.step = 2;
  adam_update(psd, {gd}, msd, vsd, h, closed);
  ema_update(esd, {pd}, 0.9, closed);
  REQUIRE_PARITY(pd, p, 0.0);
  REQUIRE_PARITY(ed, e, 0.0);
}

TEST_CASE("kernel calls reject tensors on another device, naming the kernel and argument", "[ops][errors]") {
  Tensor x = Tensor::zeros({2, 3}, DType::F64);
  Tensor out = Tensor::empty({2, 3}, DType::F64);
  StandInScope scope;
  Tensor elsewhere = Tensor::empty({2, 3}, DType::F64, Device::cuda(0));
  REQUIRE_THROWS_WITH(backend_for(Device::cpu()).unary(UnaryOp::Exp, x, elsewhere, 0.0),
                      Catch::Contains("exp: out of shape [2, 3] is on cuda:0, the kernel runs on cpu"));
  REQUIRE_THROWS_WITH(backend_for(Device::cpu()).sum(Tensor(), out), Catch::Contains("sum: x is an undefined tensor"));
  std::vector<Tensor> ws{x, elsewhere};
  std::vector<Tensor> us{x, x}, vs{x, x};
  REQUIRE_THROWS_WITH(backend_for(Device::cpu()).power_iteration(ws, us, vs, 1e-12),
                      Catch::Contains("power_iteration: w[1] of shape [2, 3] is on cuda:0"));
}
