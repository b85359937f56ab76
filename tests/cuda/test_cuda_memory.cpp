// CUDA memory: fill and the converting strided copy against the CPU backend,
// host/device and cross-device round trips, the caching allocator (no
// cudaMalloc in a repeated step; out-of-memory names the bytes), and error
// messages that name the op and the shapes.
#include <cmath>
#include <numeric>

#include "sagan/core/ops.h"
#include "sagan/core/sync_free.h"
#include "sagan/core/upload_stage.h"
#include "sagan/kernels/cuda/allocator.h"
#include "tests/cuda/parity.h"

using namespace sagan;
using namespace sagan::cudatest;
using Catch::Contains;

TEST_CASE("cuda fill writes exactly the view, in every dtype", "[cuda][memory]") {
  for (DType dt : {DType::F64, DType::F32, DType::I64}) {
    INFO("dtype " << dtype_name(dt));
    // Fill a strided view (every other column of a transposed slice); the
    // rest of the buffer must keep its poison.
    Tensor g = poisoned({5, 9, 4}, dt, dev());
    Tensor c = poisoned({5, 9, 4}, dt, Device::cpu());
    auto v = [](const Tensor& t) { return t.transpose(0, 1).slice(0, 1, 8, 2).slice(2, 0, 4, 3); };
    Tensor gv = v(g), cv = v(c);
    gpu().fill(gv, -2.5);
    cpu().fill(cv, -2.5);
    auto gvec = g.to_vector(), cvec = c.to_vector();
    REQUIRE(gvec.size() == cvec.size());
    for (size_t i = 0; i < gvec.size(); ++i) {
      INFO("element " << i);
      if (std::isnan(cvec[i]))
        REQUIRE(std::isnan(gvec[i]));
      else
        REQUIRE(gvec[i] == cvec[i]);
    }
    Tensor dense = poisoned({3, 1, 7}, dt, dev());
    gpu().fill(dense, 3.0);
    for (double x : dense.to_vector()) REQUIRE(x == 3.0);
  }
}

TEST_CASE("cuda new tensors read NaN or -1 while allocations are filled", "[cuda][memory]") {
  // tests/cuda/main.cpp turns the fill on for the whole suite; a block that
  // held finite values is handed out again filled.
  REQUIRE(cuda_fill_allocations());
  {
    Tensor held = Tensor::full({1000}, 3.0, DType::F32, dev());
    gpu().synchronize();
  }
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    INFO(dtype_name(dt));
    const std::vector<double> v = Tensor::empty({1000}, dt, dev()).to_vector();
    for (double x : v)
      if (dt == DType::I64)
        REQUIRE(x == -1.0);
      else
        REQUIRE(std::isnan(x));
  }
}

TEST_CASE("cuda copy converts every dtype pair across strided and broadcast views", "[cuda][memory]") {
  Rng gen(11);
  const DType all[] = {DType::F64, DType::F32, DType::I64};
  for (DType from : all) {
    for (DType to : all) {
      INFO("copy " << dtype_name(from) << " -> " << dtype_name(to));
      // Integers in range for every dtype, with fractions for floats.
      std::vector<double> vals(3 * 4 * 5 * 6);
      for (double& x : vals) x = std::round(gen.normal() * 100.0) + (from == DType::I64 ? 0.0 : 0.25);
      Tensor base_c = Tensor::from_vector(vals, {3, 4, 5, 6}, DType::F64).to(from);
      Tensor base_g = base_c.to(dev());
      // Permuted + sliced source, 4 dims that do not merge.
      auto sv = [](const Tensor& t) { return t.permute({2, 0, 3, 1}).slice(2, 1, 6, 2); };
      Tensor src_c = sv(base_c), src_g = sv(base_g);
      Tensor dst_c = poisoned(src_c.shape(), to, Device::cpu());
      Tensor dst_g = poisoned(src_c.shape(), to, dev());
      cpu().copy(src_c, dst_c);
      gpu().copy(src_g, dst_g);
      REQUIRE_PARITY(dst_g, dst_c, 0.0);
      // Into a strided destination (a transposed view of a bigger buffer)
      // from a broadcast source (1, 4, 5) expanded to (4, 4, 5). The buffer
      // holds a sentinel so that writes outside the view show up too.
      Tensor big_c = Tensor::full({4, 7, 9}, 7.0, to, Device::cpu()), big_g = Tensor::full({4, 7, 9}, 7.0, to, dev());
      auto dv = [](const Tensor& t) { return t.slice(1, 1, 6).slice(2, 0, 8, 2).transpose(1, 2); };
      Tensor d2c = dv(big_c), d2g = dv(big_g);
      auto bv = [](const Tensor& t) { return t.select(0, 1).select(2, 3).unsqueeze(0).expand({4, 4, 5}); };
      cpu().copy(bv(base_c), d2c);
      gpu().copy(bv(base_g), d2g);
      REQUIRE_PARITY(big_g, big_c, 0.0);
    }
  }
}

TEST_CASE("cuda host and cross-device copies round trip", "[cuda][memory]") {
  Rng gen(12);
  std::vector<double> vals(2 * 3 * 5);
  for (double& x : vals) x = gen.normal();
  for (DType dt : {DType::F64, DType::F32, DType::I64}) {
    INFO("dtype " << dtype_name(dt));
    std::vector<double> v = vals;
    if (dt == DType::I64)
      for (double& x : v) x = std::round(x * 1000.0);
    Tensor h = Tensor::from_vector(v, {2, 3, 5}, DType::F64).to(dt);
    Tensor d = h.to(dev());
    REQUIRE(d.device() == dev());
    REQUIRE(d.to(Device::cpu()).to_vector() == h.to_vector());
    // A strided device tensor goes to the host through a dense staging copy.
    REQUIRE(d.transpose(0, 2).to(Device::cpu()).to_vector() == h.transpose(0, 2).contiguous().to_vector());
    // dtype conversion on the device, then back.
    if (dt != DType::I64) REQUIRE(d.to(DType::F64).to(Device::cpu()).to_vector() == h.to(DType::F64).to_vector());
    // A large transfer (several MiB) exercises the staged pageable path.
    Tensor big = Tensor::arange(3 << 20, DType::F32);
    REQUIRE(big.to(dev()).to(Device::cpu()).to_vector() == big.to_vector());
    if (cuda_device_count() >= 2) {
      Tensor d1 = d.to(Device::cuda(1));
      REQUIRE(d1.device() == Device::cuda(1));
      REQUIRE(d1.to(Device::cpu()).to_vector() == h.to_vector());
      REQUIRE(d1.to(dev()).to(Device::cpu()).to_vector() == h.to_vector());
    } else {
      WARN("one CUDA device: the cuda:0 <-> cuda:1 round trip is not exercised");
    }
  }
}

TEST_CASE("cuda copies between devices are refused inside a sync-free region", "[cuda][memory][sync_free]") {
  Tensor h = Tensor::ones({4}, DType::F32);
  Tensor d = h.to(dev());
  SyncFreeScope region("the test's region");
  // Either direction waits for the device (a pageable copy synchronises).
  REQUIRE_THROWS_WITH(h.to(dev()), Contains("between devices") && Contains("the test's region"));
  REQUIRE_THROWS_WITH(d.to(Device::cpu()), Contains("between devices"));
  Tensor sum_on_device = add(d, 1.0);  // queuing device work stays fine
  CHECK(sum_on_device.device() == dev());
}

TEST_CASE("cuda caching allocator makes no cudaMalloc in a repeated step", "[cuda][memory]") {
  Rng gen(13);
  Tensor x = Tensor::randn({4, 3, 9, 9}, gen, DType::F32, dev());
  Tensor w = Tensor::randn({5, 3, 3, 3}, gen, DType::F32, dev());
  Tensor q = Tensor::randn({2, 17, 8}, gen, DType::F32, dev());
  std::vector<Tensor> params{Tensor::randn({5, 3, 3, 3}, gen, DType::F32, dev())};
  std::vector<Tensor> m{Tensor::zeros({5, 3, 3, 3}, DType::F32, dev())},
      v{Tensor::zeros({5, 3, 3, 3}, DType::F32, dev())};
  // One "training step": temporaries of many sizes, library workspaces.
  auto step = [&] {
    Tensor y = Tensor::empty({4, 5, 9, 9}, DType::F32, dev());
    gpu().conv2d(x, w, std::nullopt, y, {1, 1});
    Tensor r = Tensor::empty(y.shape(), DType::F32, dev());
    gpu().unary(UnaryOp::Relu, y, r, 0.0);
    Tensor s = Tensor::empty({1, 5, 1, 1}, DType::F32, dev());
    gpu().sum(r, s);
    Tensor gx = Tensor::empty(x.shape(), DType::F32, dev());
    gpu().conv2d_backward_input(r, w, gx, {1, 1});
    Tensor gw = Tensor::empty(w.shape(), DType::F32, dev());
    gpu().conv2d_backward_weight(r, x, gw, {1, 1});
    Tensor o = Tensor::empty({2, 17, 8}, DType::F32, dev()), lse = Tensor::empty({2, 17}, DType::F32, dev());
    gpu().attention_forward(q, q, q, o, lse, nullptr);
    Tensor gq = Tensor::empty(q.shape(), DType::F32, dev()), gk = Tensor::empty(q.shape(), DType::F32, dev()),
           gv = Tensor::empty(q.shape(), DType::F32, dev());
    gpu().attention_backward(q, q, q, o, lse, o, gq, gk, gv);
    Tensor big = Tensor::empty({3, 1 << 18}, DType::F32, dev());
    gpu().fill(big, 1.0);
    Tensor bs = Tensor::empty({3, 1}, DType::F32, dev());
    gpu().sum(big, bs);  // the two-pass reduction with a partial-sum workspace
    std::vector<Tensor> grads{gw};
    gpu().adam_update(params, grads, m, v, AdamHyper{}, std::nullopt, std::nullopt);
    gpu().synchronize();
  };
  step();
  step();
  const CudaMemoryStats before = cuda_memory_stats(0);
  step();
  const CudaMemoryStats after = cuda_memory_stats(0);
  INFO("cudaMalloc calls " << before.malloc_calls << " -> " << after.malloc_calls << "; cache hits "
                           << before.cache_hits << " -> " << after.cache_hits);
  REQUIRE(after.malloc_calls == before.malloc_calls);
  REQUIRE(after.cache_hits > before.cache_hits);
  REQUIRE(after.bytes_in_use == before.bytes_in_use);
  // Emptying the cache gives the blocks back; the next step mallocs again.
  cuda_empty_cache(0);
  REQUIRE(cuda_memory_stats(0).bytes_cached == 0);
  step();
  REQUIRE(cuda_memory_stats(0).malloc_calls > after.malloc_calls);
}

TEST_CASE("cuda upload stage: a send runs beside earlier work, a take lands in stream order", "[cuda][memory][upload]") {
  // The copy stream writes the landing buffer while the backend's stream
  // runs: work queued before take() still reads the old values, work after
  // it the new ones, and host memory is never rewritten under a copy.
  UploadStage stage(dev());
  const int64_t n = (1 << 20) + 3;
  Tensor buf;
  Rng gen(5);
  Tensor slow = Tensor::randn({1536, 1536}, gen, DType::F32, dev());
  for (int round = 0; round < 4; ++round) {
    INFO("round " << round);
    const double v = 1.0 + round;
    stage.add(buf, Tensor::full({n}, v, DType::F64), DType::F32);
    stage.send();
    // Keep the stream busy while the copy runs; queue a read of buf, then
    // the take, then another read, and only then look at both.
    Tensor busy = slow;
    for (int i = 0; i < 8; ++i) busy = matmul(busy, slow) * (1.0 / 64.0);
    Tensor before;
    if (round > 0) before = mul(buf, 1.0);  // round 0: buf was just made
    stage.take();
    Tensor after = mul(buf, 2.0);
    if (round > 0)
      CHECK(before.to(Device::cpu()).to_vector() == std::vector<double>(static_cast<size_t>(n), v - 1.0));
    CHECK(after.to(Device::cpu()).to_vector() == std::vector<double>(static_cast<size_t>(n), 2.0 * v));
  }
  // Sends of the same size reuse the stage's memory and the buffer.
  const CudaMemoryStats before = cuda_memory_stats(0);
  for (int i = 0; i < 3; ++i) {
    stage.add(buf, Tensor::full({n}, 9.0, DType::F32), DType::F32);
    stage.send();
    stage.take();
  }
  gpu().synchronize();
  CHECK(cuda_memory_stats(0).malloc_calls == before.malloc_calls);
  CHECK(buf.to(Device::cpu()).to_vector() == std::vector<double>(static_cast<size_t>(n), 9.0));
}

TEST_CASE("cuda allocator: a block freed during a capture stays with the graph", "[cuda][memory][step_graph]") {
  // A tensor made before a capture, used by the captured work and freed
  // during it: its block must not go back to the common cache while the
  // graph (which replays on its address) lives.
  cuda::CachingAllocator a(0);
  void* before = a.allocate(4096);
  const int pool = a.begin_pool();
  a.free(before);
  void* inside = a.allocate(4096);  // the pool's own: may be `before` again
  a.end_pool();
  void* after = a.allocate(4096);
  CHECK(after != before);
  CHECK(after != inside);
  a.free(after);
  a.free(inside);
  a.release_pool(pool);  // the graph is gone: its blocks join the common cache
  void* again = a.allocate(4096);
  CHECK((again == before || again == inside || again == after));
  a.free(again);
  a.empty_cache();
}

TEST_CASE("cuda out of memory names the bytes requested and free", "[cuda][memory]") {
  const size_t huge = size_t(1) << 50;  // 1 PiB
  REQUIRE_THROWS_WITH(gpu().allocate(huge), Contains("out of memory") && Contains("1125899906842624 bytes") &&
                                                Contains("free") && Contains("cuda:0"));
  // The device stays usable.
  Tensor t = Tensor::full({3}, 2.0, DType::F32, dev());
  REQUIRE(t.to_vector() == std::vector<double>{2, 2, 2});
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 48}, DType::F32, dev()), Contains("out of memory"));
}

// Shapes are checked once, by the op front ends (core/ops/); the kernel layer
// checks that every tensor is on the backend's device, and bmm, copy and sum
// check the geometry they derive their launch from.
TEST_CASE("cuda ops and kernels reject bad input naming the op and the shapes", "[cuda][memory][errors]") {
  REQUIRE_THROWS_WITH(backend_for(Device::cuda(99)), Contains("cuda:99") && Contains("no such CUDA device"));
  Tensor a = Tensor::zeros({2, 3, 4}, DType::F32, dev()), b = Tensor::zeros({2, 5, 6}, DType::F32, dev());
  Tensor o = Tensor::empty({2, 3, 6}, DType::F32, dev());
  REQUIRE_THROWS_WITH(gpu().bmm(a, b, o, 0.0), Contains("bmm") && Contains("[2, 3, 4]") && Contains("[2, 5, 6]"));
  Tensor oc = Tensor::empty({2, 3, 6}, DType::F64, dev());
  Tensor b2 = Tensor::zeros({2, 4, 6}, DType::F32, dev());
  REQUIRE_THROWS_WITH(gpu().bmm(a, b2, oc, 0.0), Contains("bmm") && Contains("float64"));
  Tensor host = Tensor::zeros({2, 3, 4}, DType::F32);
  Tensor out = Tensor::empty({2, 3, 4}, DType::F32, dev());
  REQUIRE_THROWS_WITH(gpu().unary(UnaryOp::Exp, host, out, 0.0), Contains("exp") && Contains("is on cpu"));
  REQUIRE_THROWS_WITH(gpu().copy(a, o), Contains("copy") && Contains("[2, 3, 4]") && Contains("[2, 3, 6]"));
  Tensor x2 = Tensor::zeros({3, 4}, DType::F32, dev());
  Tensor idx = Tensor::from_vector(std::vector<int64_t>{5, 0}, {2}, dev());
  REQUIRE_THROWS_WITH(index_select(x2, 1, idx), Contains("index_select") && Contains("[3, 4]"));
  Tensor x = Tensor::zeros({1, 4, 8, 8}, DType::F32, dev()), w = Tensor::zeros({4, 3, 3, 3}, DType::F32, dev());
  REQUIRE_THROWS_WITH(conv2d(x, w, std::nullopt, 1, 1), Contains("conv2d") && Contains("[1, 4, 8, 8]"));
  Tensor s = Tensor::empty({2, 1, 5}, DType::F32, dev());
  REQUIRE_THROWS_WITH(gpu().sum(a, s), Contains("sum") && Contains("[2, 3, 4]"));
}
