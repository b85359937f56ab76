// Training on the GPU follows training on the CPU: a small SAGAN-32 Trainer
// (ch = 8, batch 8, an in-memory data set) built with the same seed on cpu
// and on cuda, three steps each, through both CUDA attention paths. Both
// runs see the same initial weights, batches, z and labels (random numbers
// are drawn on the CPU and copied), so the losses differ only by float32
// rounding in different summation orders (cuBLAS/cuDNN, the fused kernels,
// the batched power iteration against Eigen and the CPU loops).
//
// Tolerances, as |gpu - cpu| <= tol * max(1, |cpu|):
// - step 1's loss_D, d_real and d_fake: 1e-4. They come from the initial
//   weights (no update yet) through ~20 layers of float32 forward, whose
//   rounding differences are ~1e-6 relative; 1e-4 leaves room for the
//   reductions over the batch and the hinge.
// - everything after an Adam update (step 1's loss_G, steps 2 and 3): 1e-3.
//   Adam's first steps move each weight by about lr * g / (|g| + eps), i.e.
//   by +-lr for nearly every gradient element whatever its size, so an
//   element whose gradient is within rounding of zero can move by a
//   different amount on the two devices; those few differences of up to
//   ~lr = 4e-4 per weight shift the next losses by well under 1e-3
//   relative in three steps, while a wrong kernel (a sign, a missed
//   element, a wrong lse) moves them by far more.
#include <algorithm>
#include <cmath>
#include <memory>

#include "sagan/core/io/image.h"
#include "sagan/models/trainer.h"
#include "tests/cuda/parity.h"
#include "tests/support/resume_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::TinyDataset;
using namespace sagan::cudatest;

namespace {

TrainConfig small_config(const std::string& device) {
  TrainConfig c;
  c.model.ch = 8;  // G 32 wide at the attention block (d = 4, dv = 16), D 16 wide (d = 2, dv = 8)
  c.model.z_dim = 16;
  c.batch_size = 8;
  c.steps = 3;
  c.ema_start = 2;
  c.ema_decay = 0.9;
  c.device = device;
  c.seed = 11;
  return c;
}

bool close(double got, double want, double tol) { return std::abs(got - want) <= tol * std::max(1.0, std::abs(want)); }

}  // namespace

TEST_CASE("cuda training steps give the cpu's losses for the same seed", "[cuda][trainer]") {
  auto ds = std::make_shared<TinyDataset>(32, 1000);
  std::vector<StepStats> want;
  {
    Trainer t(small_config("cpu"), ds);
    for (int i = 0; i < 3; ++i) want.push_back(t.step());
  }
  for (AttentionImpl impl : attention_impls()) {
    AttentionImplScope scope(impl);
    Trainer t(small_config("cuda"), ds);
    REQUIRE(t.device().is_cuda());
    for (int i = 0; i < 3; ++i) {
      const StepStats s = t.step();
      const StepStats& w = want[static_cast<size_t>(i)];
      INFO(attention_impl_name(impl) << " step " << s.step << ": loss_D " << s.loss_d << " (cpu " << w.loss_d
                                     << "), loss_G " << s.loss_g << " (cpu " << w.loss_g << "), d_real " << s.d_real
                                     << " (cpu " << w.d_real << "), d_fake " << s.d_fake << " (cpu " << w.d_fake
                                     << ")");
      REQUIRE(std::isfinite(s.loss_d));
      REQUIRE(std::isfinite(s.loss_g));
      const double tol_d = i == 0 ? 1e-4 : 1e-3;
      CHECK(close(s.loss_d, w.loss_d, tol_d));
      CHECK(close(s.d_real, w.d_real, tol_d));
      CHECK(close(s.d_fake, w.d_fake, tol_d));
      CHECK(close(s.loss_g, w.loss_g, 1e-3));
    }
  }
}

TEST_CASE("cuda training with --accumulate 2 gives the cpu's losses", "[cuda][trainer][accumulate]") {
  // Two passes of 4 an update; tolerances as above.
  auto ds = std::make_shared<TinyDataset>(32, 1000);
  TrainConfig cfg = small_config("cpu");
  cfg.batch_size = 4;
  cfg.accumulate = 2;
  cfg.diffaug = "color,translation,cutout";
  std::vector<StepStats> want;
  {
    Trainer t(cfg, ds);
    for (int i = 0; i < 3; ++i) want.push_back(t.step());
  }
  cfg.device = "cuda";
  Trainer t(cfg, ds);
  REQUIRE(t.device().is_cuda());
  for (int i = 0; i < 3; ++i) {
    const StepStats s = t.step();
    const StepStats& w = want[static_cast<size_t>(i)];
    INFO("step " << s.step << ": loss_D " << s.loss_d << " (cpu " << w.loss_d << "), loss_G " << s.loss_g << " (cpu "
                 << w.loss_g << ")");
    const double tol_d = i == 0 ? 1e-4 : 1e-3;
    CHECK(close(s.loss_d, w.loss_d, tol_d));
    CHECK(close(s.d_real, w.d_real, tol_d));
    CHECK(close(s.d_fake, w.d_fake, tol_d));
    CHECK(close(s.loss_g, w.loss_g, 1e-3));
  }
}

TEST_CASE("cuda training in deterministic mode repeats bit for bit, resumed or not", "[cuda][trainer][deterministic]") {
  // The fused attention's backward (dQ without atomics), the embeddings'
  // index_add and cuDNN's algorithms are where a GPU run could vary.
  auto ds = std::make_shared<TinyDataset>(24, 1000);  // 3 batches per epoch: the resume crosses an epoch
  TrainConfig cfg = small_config("cuda");
  cfg.steps = 5;
  REQUIRE(cfg.deterministic);  // the default
  Trainer a(cfg, ds), b(cfg, ds);
  REQUIRE(a.device().is_cuda());
  for (int i = 0; i < 5; ++i) {
    const StepStats sa = a.step(), sb = b.step();
    INFO("step " << sa.step);
    CHECK(sa.loss_d == sb.loss_d);
    CHECK(sa.loss_g == sb.loss_g);
  }
  testing::check_same_state(a, b);

  const testing::ResumeRun run = testing::run_straight_and_resumed(cfg, ds, 5, 2);
  testing::check_same_logged_values(run);
  testing::check_same_state(a, *run.resumed);
}

TEST_CASE("cuda step graph: replayed iterations equal plain ones bit for bit, with no cudaMalloc",
          "[cuda][trainer][step_graph]") {
  // Deterministic mode (the default), so plain steps repeat bit for bit and
  // any difference is the graph's. ema_start = 3: each EMA phase runs one
  // plain step, then captures (steps 1-2 the copy, 3-4 the average), then
  // replays; gradient clipping on, so its device-side factor is captured too.
  auto ds = std::make_shared<TinyDataset>(24, 1000);
  TrainConfig cfg = small_config("cuda");
  cfg.steps = 8;
  cfg.n_dis = 2;
  cfg.ema_start = 3;
  cfg.grad_clip = 0.5;
  cfg.diffaug = GENERATE(std::string("none"), std::string("color,translation,cutout"));
  cfg.accumulate = GENERATE(1, 2);  // 2: the passes' loops and BN copies in the graph
  INFO("--diffaug " << cfg.diffaug << " --accumulate " << cfg.accumulate);
  Trainer plain(cfg, ds), graphed(cfg, ds);
  graphed.set_step_graph(true);
  for (int i = 0; i < 8; ++i) {
    const StepStats a = plain.step();
    const int64_t mallocs = cuda_memory_stats(0).malloc_calls;
    const StepStats b = graphed.step();
    INFO("step " << a.step);
    CHECK(a.loss_d == b.loss_d);
    CHECK(a.loss_g == b.loss_g);
    CHECK(a.d_fake == b.d_fake);
    CHECK(a.grad_norm_d == b.grad_norm_d);
    if (i >= 4) CHECK(cuda_memory_stats(0).malloc_calls == mallocs);  // replays allocate nothing
  }
  testing::check_same_state(plain, graphed);
}

#ifdef SAGAN_WITH_NCCL
TEST_CASE("cuda step graph of a one-rank NCCL job: the gradient buckets' all-reduces replay too",
          "[cuda][trainer][step_graph][nccl]") {
  // The data-parallel path on one GPU (--comm nccl): each bucket's
  // all-reduce runs on NCCL's stream between two event edges, which the
  // capture records; the graph must give what the same job's plain steps do.
  auto ds = std::make_shared<TinyDataset>(24, 1000);
  TrainConfig cfg = small_config("cuda");
  cfg.n_dis = 2;
  cfg.ema_start = 2;
  cfg.comm = "nccl";
  cfg.accumulate = GENERATE(1, 2);  // 2: the buckets launched in the last pass's backward only
  INFO("--accumulate " << cfg.accumulate);
  Trainer plain(cfg, ds), graphed(cfg, ds);
  REQUIRE(graphed.data_parallel() != nullptr);
  graphed.set_step_graph(true);
  for (int i = 0; i < 6; ++i) {
    const StepStats a = plain.step(), b = graphed.step();
    INFO("step " << a.step);
    CHECK(a.loss_d == b.loss_d);
    CHECK(a.loss_g == b.loss_g);
    CHECK(a.grad_norm_g == b.grad_norm_g);
  }
  testing::check_same_state(plain, graphed);
}
#endif
