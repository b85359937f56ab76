// The fused multi-tensor Adam and EMA kernels (kernels/cuda/optim_kernels.cuh)
// run on the CPU through the fiber emulator and must match the CPU backend's
// adam_update / ema_update: over more tensors than one launch's table holds,
// empty tensors and tensors that end inside a chunk, a grid smaller than the
// chunks (blocks stride over several), both dtypes, the gate (NaN: nothing
// moves) and the device-side scales a replayed step graph reads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/gradcheck.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/optim_kernels.cuh"
// clang-format on

namespace {

using namespace sagan;
namespace opt = sagan::fused::optim;

// Sizes around the chunk (2048 elements) and a launch's 64 tensors: 70
// tensors, some empty, one spanning several chunks.
std::vector<int64_t> tensor_sizes() {
  std::vector<int64_t> sizes{0, 1, 2047, 2048, 2049, 0, 5000, 3, 0, 4097};
  for (int i = 0; sizes.size() < 70; ++i) sizes.push_back(1 + (i * 37) % 300);
  return sizes;
}

std::vector<Tensor> random_tensors(const std::vector<int64_t>& sizes, DType dt, Rng& gen, double scale = 1.0,
                                   bool positive = false) {
  std::vector<Tensor> out;
  for (int64_t n : sizes) {
    Tensor t = mul(Tensor::randn({n}, gen, dt), scale);
    out.push_back(positive ? abs(t) : t);
  }
  return out;
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.clone());
  return out;
}

// Largest |a - b| / (1 + |b|) over all elements of all tensors.
double max_rel_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::vector<double> x = a[i].to_vector(), y = b[i].to_vector();
    REQUIRE(x.size() == y.size());
    for (size_t k = 0; k < x.size(); ++k)
      m = sagan::testing::max_keep_nan(m, std::abs(x[k] - y[k]) / (1.0 + std::abs(y[k])));
  }
  return m;
}

template <class F>
void run_emulated(const std::vector<opt::Slot>& slots, const std::vector<int64_t>& starts, const F& f) {
  // 3 blocks at most: most blocks walk several chunks.
  opt::for_each_group(slots, starts, 3, [&](unsigned grid, const opt::GroupTable& t, int count) {
    cuda_emu::launch(opt::multi_tensor_kernel<F>, dim3(grid), dim3(opt::kThreads), 0, t, count, f);
  });
}

template <class T>
void check_adam(DType dt, double tol) {
  Rng gen(21);
  const std::vector<int64_t> sizes = tensor_sizes();
  const std::vector<Tensor> p0 = random_tensors(sizes, dt, gen), g = random_tensors(sizes, dt, gen, 0.1),
                            m0 = random_tensors(sizes, dt, gen, 0.01), v0 = random_tensors(sizes, dt, gen, 1e-3, true);
  AdamHyper h;
  h.lr = 2e-4;
  h.beta1 = 0.5;
  h.beta2 = 0.999;
  h.eps = 1e-8;
  h.step = 7;
  // The device-side scales of another step, as a replayed graph passes them.
  const AdamScales other = adam_scales(h, 12);
  const Tensor scales = Tensor::from_vector(std::vector<double>{other.step_size, other.sqrt_bc2}, {2}, dt);
  for (const bool with_scales : {false, true}) {
    for (const double gate_value : {0.0, std::numeric_limits<double>::quiet_NaN()}) {
      INFO("dtype " << dtype_name(dt) << ", scales " << with_scales << ", gate " << gate_value);
      const Tensor gate = Tensor::full({1}, gate_value, dt);
      std::vector<Tensor> p = clones(p0), m = clones(m0), v = clones(v0);
      std::vector<Tensor> pe = clones(p0), me = clones(m0), ve = clones(v0);
      backend_for(Device::cpu())
          .adam_update(p, g, m, v, h, gate, with_scales ? std::optional<Tensor>(scales) : std::nullopt);
      std::vector<opt::Slot> slots;
      std::vector<int64_t> starts{0};
      for (size_t i = 0; i < sizes.size(); ++i) {
        slots.push_back({{pe[i].raw_data(), g[i].raw_data(), me[i].raw_data(), ve[i].raw_data()}});
        starts.push_back(starts.back() + sizes[i]);
      }
      const AdamScales sc = adam_scales(h, h.step);
      opt::AdamStep<T> f{{static_cast<const T*>(gate.raw_data())},
                         static_cast<T>(sc.step_size),
                         static_cast<T>(sc.sqrt_bc2),
                         static_cast<T>(h.beta1),
                         static_cast<T>(h.beta2),
                         static_cast<T>(1.0 - h.beta1),
                         static_cast<T>(1.0 - h.beta2),
                         static_cast<T>(h.eps),
                         with_scales ? static_cast<const T*>(scales.raw_data()) : nullptr};
      run_emulated(slots, starts, f);
      CHECK(max_rel_diff(pe, p) <= tol);
      CHECK(max_rel_diff(me, m) <= tol);
      CHECK(max_rel_diff(ve, v) <= tol);
      if (std::isnan(gate_value)) {  // held back: bit for bit what it was
        CHECK(max_rel_diff(pe, p0) == 0.0);
        CHECK(max_rel_diff(ve, v0) == 0.0);
      } else {
        CHECK(max_rel_diff(pe, p0) > 1e-6);  // it moved
      }
    }
  }
}

template <class T>
void check_ema(DType dt, double tol) {
  Rng gen(22);
  const std::vector<int64_t> sizes = tensor_sizes();
  const std::vector<Tensor> e0 = random_tensors(sizes, dt, gen), src = random_tensors(sizes, dt, gen);
  for (const double decay : {0.0, 0.999}) {
    for (const double gate_value : {0.0, std::numeric_limits<double>::quiet_NaN()}) {
      INFO("dtype " << dtype_name(dt) << ", decay " << decay << ", gate " << gate_value);
      const Tensor gate = Tensor::full({1}, gate_value, dt);
      std::vector<Tensor> e = clones(e0), ee = clones(e0);
      backend_for(Device::cpu()).ema_update(e, src, decay, gate);
      std::vector<opt::Slot> slots;
      std::vector<int64_t> starts{0};
      for (size_t i = 0; i < sizes.size(); ++i) {
        slots.push_back({{ee[i].raw_data(), src[i].raw_data(), nullptr, nullptr}});
        starts.push_back(starts.back() + sizes[i]);
      }
      run_emulated(slots, starts,
                   opt::EmaStep<T>{{static_cast<const T*>(gate.raw_data())}, static_cast<T>(decay),
                                   static_cast<T>(1.0 - decay)});
      CHECK(max_rel_diff(ee, e) <= tol);
      if (std::isnan(gate_value)) CHECK(max_rel_diff(ee, e0) == 0.0);
      if (!std::isnan(gate_value) && decay == 0.0) CHECK(max_rel_diff(ee, src) == 0.0);  // a copy
    }
  }
}

}  // namespace

TEST_CASE("emulated fused Adam matches the CPU backend over 70 tensors, gated and with device scales",
          "[optim][cuda_emu]") {
  // The same arithmetic; a compiler may contract a * b + c into one FMA on
  // one side only, hence a few ulps.
  check_adam<float>(DType::F32, 1e-6);
  check_adam<double>(DType::F64, 1e-14);
}

TEST_CASE("emulated fused EMA matches the CPU backend over 70 tensors, gated", "[optim][cuda_emu]") {
  check_ema<float>(DType::F32, 1e-6);
  check_ema<double>(DType::F64, 1e-14);
}

TEST_CASE("optimiser launch groups: 64 tensors a launch, empty groups skipped, grid capped", "[optim][cuda_emu]") {
  std::vector<opt::Slot> slots(130, opt::Slot{{nullptr, nullptr, nullptr, nullptr}});
  std::vector<int64_t> starts{0};
  for (size_t i = 0; i < slots.size(); ++i) starts.push_back(starts.back() + (i >= 64 && i < 128 ? 0 : 3000));
  std::vector<std::pair<unsigned, int>> launches;
  std::vector<int64_t> totals;
  opt::for_each_group(slots, starts, 2, [&](unsigned grid, const opt::GroupTable& t, int count) {
    launches.push_back({grid, count});
    totals.push_back(t.starts[count]);
    CHECK(t.starts[0] == 0);
  });
  // Group 2 (tensors 64-127) is empty: no launch. Group 1 has 64 x 3000
  // elements (94 chunks): the grid is capped at 2. Group 3 has 2 x 3000.
  REQUIRE(launches.size() == 2);
  CHECK(launches[0] == std::pair<unsigned, int>{2, 64});
  CHECK(totals[0] == 64 * 3000);
  CHECK(launches[1] == std::pair<unsigned, int>{2, 2});
  CHECK(totals[1] == 6000);
}
