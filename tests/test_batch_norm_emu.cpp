// The CUDA batch-norm launch sequences (kernels/cuda/batch_norm_kernels.cuh,
// exactly what batch_norm.cu launches) on the CPU emulator against the CPU
// backend: statistics, normalisation and backward with strided mean and
// invstd (as a conditional BN passes them), both dtypes, on odd sizes that
// take every path: one slice per channel (a block per channel) and several
// (partials in a double workspace, a last slice shorter than the others,
// more than 32 slices so that a lane adds several partials), rows shorter
// than a block (several rows per pass, idle threads), rows of a block or
// more (not a multiple of it), 1 x 1 images, blocks striding over their
// items. Outputs and workspace start as NaN. Also the slice plan itself,
// bitwise reproducibility, and that the mean written is the one the
// variance pass centred on.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "tests/support/assertions.h"

// After every other header: the emulator defines threadIdx, __shared__ etc.
// clang-format off
#include "tests/cuda/emu/cuda_emu.h"
#include "sagan/kernels/cuda/batch_norm_kernels.cuh"
// clang-format on

namespace {
using namespace sagan;
namespace cu = sagan::cuda;

cuda_emu::Schedule other_schedule() {
  return cuda_emu::schedule() == cuda_emu::Schedule::Lockstep ? cuda_emu::Schedule::RunAhead
                                                              : cuda_emu::Schedule::Lockstep;
}

template <class T>
const T* cp(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* mp(Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// The launch callable of the sequences: runs each kernel on the emulator
// and records what was launched on which grid.
struct EmuLaunch {
  struct Launched {
    std::string name;
    unsigned grid;
  };
  std::vector<Launched> log;
  template <class K, class... A>
  void operator()(K kernel, const char* name, unsigned grid, A... args) {
    log.push_back({name, grid});
    cuda_emu::launch(kernel, dim3(grid), dim3(cu::kBlock), 0, args...);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const Launched& l : log) n.push_back(l.name);
    return n;
  }
};

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  return va.size() == vb.size() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(double)) == 0;
}

// warp_ordered_total as lane 0 computes it: lane sums in order, then the
// xor butterfly.
double ordered_total(const double* p, int64_t n) {
  double v[32];
  for (int l = 0; l < 32; ++l) {
    v[l] = 0;
    for (int64_t i = l; i < n; i += 32) v[l] += p[i];
  }
  for (int o = 16; o > 0; o >>= 1) {
    double w[32];
    for (int l = 0; l < 32; ++l) w[l] = v[l] + v[l ^ o];
    std::memcpy(v, w, sizeof v);
  }
  return v[0];
}

template <class T>
void check_batch_norm(DType dt, const Shape& shape, int64_t slice_elems, int64_t max_grid, double tol) {
  const int64_t B = shape[0], C = shape[1];
  int64_t hw = 1;
  for (size_t i = 2; i < shape.size(); ++i) hw *= shape[i];
  const cu::BnPlan plan = cu::plan_bn(B, hw, slice_elems);
  INFO(dtype_name(dt) << " x " << shape_str(shape) << ", slice_elems " << slice_elems << " -> " << plan.slices
                      << " slices of " << plan.rows_per_slice << " rows, max grid " << max_grid);
  Rng gen(9);
  const Tensor x = add(mul(Tensor::randn(shape, gen, dt), 3.0), 1.5);
  const Tensor gy = Tensor::randn(shape, gen, dt);
  const double eps = 1e-5;
  Backend& cpu = backend_for(Device::cpu());
  const int64_t items = C * plan.slices;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> ws;
  auto poison_ws = [&] {
    ws.assign(static_cast<size_t>(std::max<int64_t>(cu::bn_workspace_doubles(plan, C), 1)), nan);
  };

  // ---- statistics ----
  Tensor want_mean = Tensor::empty({C}, dt), want_var = Tensor::empty({C}, dt), want_invstd = Tensor::empty({C}, dt);
  cpu.batch_norm_stats(x, want_mean, want_var, want_invstd, eps);
  auto stats = [&](Tensor& mean, Tensor& var, Tensor& invstd) {
    mean = Tensor::full({C}, NAN, dt);
    var = Tensor::full({C}, NAN, dt);
    invstd = Tensor::full({C}, NAN, dt);
    poison_ws();
    EmuLaunch launch;
    cu::bn_stats_launches<T>(launch, plan, cp<T>(x), mp<T>(mean), mp<T>(var), mp<T>(invstd), ws.data(), B, C, hw, eps,
                             max_grid);
    return launch;
  };
  Tensor mean, var, invstd;
  const EmuLaunch sl = stats(mean, var, invstd);
  CHECK_CLOSE(mean, want_mean, 0, tol);
  CHECK_CLOSE(var, want_var, 0, tol);
  CHECK_CLOSE(invstd, want_invstd, 0, tol);
  if (plan.slices == 1) {
    CHECK(sl.names() == std::vector<std::string>{"bn_stats_kernel"});
  } else {
    CHECK(sl.names() ==
          std::vector<std::string>{"bn_stats_sum_kernel", "bn_stats_sq_kernel", "bn_stats_finalize_kernel"});
    // The mean written is the total of pass 1's partials in warp order over
    // n, bitwise: the same function pass 2 centred on; invstd from pass 2's.
    const double n = static_cast<double>(B * hw);
    const std::vector<double> mv = mean.to_vector(), vv = var.to_vector(), iv = invstd.to_vector();
    for (int64_t c = 0; c < C; ++c) {
      INFO("channel " << c);
      const double mu = ordered_total(ws.data() + c * plan.slices, plan.slices) / n;
      const double sq = ordered_total(ws.data() + items + c * plan.slices, plan.slices) / n;
      CHECK(mv[c] == static_cast<double>(static_cast<T>(mu)));
      CHECK(vv[c] == static_cast<double>(static_cast<T>(sq)));
      CHECK(iv[c] == static_cast<double>(static_cast<T>(1.0 / std::sqrt(sq + eps))));
    }
  }
  for (const auto& l : sl.log) CHECK(l.grid <= static_cast<unsigned>(max_grid));
  {  // a second run under the other schedule: the same bits (no race, no
     // order that depends on which warp runs first)
    cuda_emu::ScheduleScope sched(other_schedule());
    Tensor mean2, var2, invstd2;
    stats(mean2, var2, invstd2);
    CHECK(bitwise_equal(mean2, mean));
    CHECK(bitwise_equal(var2, var));
    CHECK(bitwise_equal(invstd2, invstd));
  }

  // Strided statistics: every other element of a wider buffer.
  Tensor mean_buf = Tensor::full({2 * C}, NAN, dt), invstd_buf = Tensor::full({2 * C}, NAN, dt);
  Tensor mean_s = mean_buf.slice(0, 0, 2 * C, 2), invstd_s = invstd_buf.slice(0, 0, 2 * C, 2);
  mean_s.copy_(want_mean);
  invstd_s.copy_(want_invstd);

  // ---- normalisation ----
  Tensor out = Tensor::full(shape, NAN, dt), want_out = Tensor::empty(shape, dt);
  cpu.batch_norm_normalize(x, want_mean, want_invstd, want_out);
  {
    EmuLaunch launch;
    cu::bn_normalize_launches<T>(launch, cp<T>(x), cp<T>(mean_s), 2, cp<T>(invstd_s), 2, mp<T>(out), B, C, hw,
                                 max_grid);
    CHECK(launch.names() ==
          std::vector<std::string>{hw >= cu::kBlock ? "bn_normalize_rows_kernel" : "bn_normalize_kernel"});
  }
  CHECK_CLOSE(out, want_out, 0, tol);

  // ---- backward ----
  Tensor want_gx = Tensor::empty(shape, dt);
  cpu.batch_norm_backward(x, want_mean, want_invstd, gy, want_gx);
  auto backward = [&](Tensor& gx) {
    gx = Tensor::full(shape, NAN, dt);
    poison_ws();
    EmuLaunch launch;
    cu::bn_backward_launches<T>(launch, plan, cp<T>(x), cp<T>(mean_s), 2, cp<T>(invstd_s), 2, cp<T>(gy), mp<T>(gx),
                                ws.data(), B, C, hw, max_grid);
    return launch;
  };
  Tensor gx;
  const EmuLaunch bl = backward(gx);
  CHECK_CLOSE(gx, want_gx, 0, tol);
  CHECK(bl.names() == (plan.slices == 1
                           ? std::vector<std::string>{"bn_backward_kernel"}
                           : std::vector<std::string>{"bn_backward_sum_kernel", "bn_backward_apply_kernel"}));
  {  // under the other schedule: the same bits
    cuda_emu::ScheduleScope sched(other_schedule());
    Tensor gx2;
    backward(gx2);
    CHECK(bitwise_equal(gx2, gx));
  }
}

template <class T>
void check_all(DType dt, double tol) {
  constexpr int64_t kDefault = cu::kBnSliceElems, kNoCap = cu::kMaxBlocks;
  // One slice: 7 channels over 3 blocks, rows of 99 (2 rows a pass, 58
  // threads idle).
  check_batch_norm<T>(dt, {5, 7, 9, 11}, kDefault, 3, tol);
  // 6 slices of 2 rows, the last of 1; rows of 35 (7 a pass, 11 threads
  // idle); 18 items over 4 blocks.
  check_batch_norm<T>(dt, {11, 3, 5, 7}, 64, 4, tol);
  // Rows of 323 (a block and a tail): 4 slices of 2 rows, the last of 1; 12
  // items over 5 blocks; normalisation by rows, 21 rows over 5 blocks.
  check_batch_norm<T>(dt, {7, 3, 17, 19}, 512, 5, tol);
  // 1 x 1 images (a 2-d (N, C) input): 5 slices of 14 rows, the last of 11.
  check_batch_norm<T>(dt, {67, 6, 1, 1}, 16, 7, tol);
  // Rows of 3, 85 a pass: one slice (each thread walks up to 3 rows), then
  // 5 slices of 40.
  check_batch_norm<T>(dt, {200, 3, 3, 1}, kDefault, 2, tol);
  check_batch_norm<T>(dt, {200, 3, 3, 1}, 128, kNoCap, tol);
  // The cap of 64 slices: 44 slices of 3 rows, the last of 1 (lanes add two
  // partials each in warp_ordered_total).
  check_batch_norm<T>(dt, {130, 2, 2, 2}, 1, 9, tol);
  // Long rows, one slice, one block.
  check_batch_norm<T>(dt, {3, 2, 37, 41}, kDefault, 1, tol);
  // 11 channels sliced on a grid of 1 block: the finalize kernel's 8 warps
  // take channels 0-7, then 8-10 (its grid-stride loop runs twice).
  check_batch_norm<T>(dt, {11, 9, 5, 7}, 64, 1, tol);
  // Rows of exactly a block's width (hw == kBlock): the long-row walker and
  // the rows normalisation at their boundary; 3 slices.
  check_batch_norm<T>(dt, {6, 2, 16, 16}, 512, 3, tol);
}
}  // namespace

TEST_CASE("batch-norm slice plan: whole rows, no empty slice, at most 64, from the shape alone", "[batch_norm]") {
  const int64_t hws[] = {1, 3, 16, 255, 256, 957, 1000, 4096, 16384, 65536};
  const int64_t slice_elems[] = {1, 16, 64, 1000, cu::kBnSliceElems};
  for (int64_t batch = 1; batch <= 300; batch += (batch < 70 ? 1 : 7))
    for (int64_t hw : hws)
      for (int64_t se : slice_elems) {
        INFO("batch " << batch << ", hw " << hw << ", slice_elems " << se);
        const cu::BnPlan p = cu::plan_bn(batch, hw, se);
        REQUIRE(p.slices >= 1);
        REQUIRE(p.slices <= cu::kBnMaxSlices);
        REQUIRE(p.rows_per_slice >= 1);
        REQUIRE(p.slices * p.rows_per_slice >= batch);       // the rows cover the batch
        REQUIRE((p.slices - 1) * p.rows_per_slice < batch);  // and the last slice has one
        if (batch * hw <= se) REQUIRE(p.slices == 1);
        const cu::BnPlan q = cu::plan_bn(batch, hw, se);
        REQUIRE((q.slices == p.slices && q.rows_per_slice == p.rows_per_slice));
        REQUIRE(cu::bn_workspace_doubles(p, 5) == (p.slices == 1 ? 0 : 2 * 5 * p.slices));
      }
  // SAGAN-128's generator at 128 x 128: 64 slices of 1 row at batch 64, of
  // 4 rows at 256; 16 x 16 at batch 64 is one slice; the GPU parity shape
  // (37, 5, 33, 29) three slices of 13, 13 and 11 rows.
  auto plan = [](int64_t b, int64_t hw) {
    const cu::BnPlan p = cu::plan_bn(b, hw);
    return std::vector<int64_t>{p.slices, p.rows_per_slice};
  };
  CHECK(plan(64, 128 * 128) == std::vector<int64_t>{64, 1});
  CHECK(plan(256, 128 * 128) == std::vector<int64_t>{64, 4});
  CHECK(plan(64, 16 * 16) == std::vector<int64_t>{1, 64});
  CHECK(plan(64, 32 * 32) == std::vector<int64_t>{4, 16});
  CHECK(plan(37, 33 * 29) == std::vector<int64_t>{3, 13});
}

TEST_CASE("emulated CUDA batch norm matches the CPU backend: statistics, normalise, backward",
          "[batch_norm][cuda_emu]") {
  check_all<double>(DType::F64, 1e-12);
  check_all<float>(DType::F32, 1e-5);
  // The GPU parity test's sliced shape, with the backend's plan.
  check_batch_norm<float>(DType::F32, {37, 5, 33, 29}, cu::kBnSliceElems, cu::kMaxBlocks, 1e-5);
}
