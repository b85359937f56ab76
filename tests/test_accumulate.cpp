// Gradient accumulation (--accumulate, models/trainer.h): passes over
// micro-batches averaged into one update. That N passes train as N ranks
// do is dp_check accumulate's (tests/mpi, under mpirun); here, on one
// process: the update's arithmetic, exact resume, and the refusals. The
// two whole-run comparisons are [long] (left out under the sanitizers,
// where they took 40 s; the other cases run the same code there).
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "sagan/core/ops.h"
#include "sagan/dist/single_communicator.h"
#include "sagan/models/data_parallel.h"
#include "sagan/models/train_options.h"
#include "sagan/models/trainer.h"
#include "tests/support/bitwise.h"
#include "tests/support/resume_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::bitwise_equal;
using sagan::testing::TempDir;
using sagan::testing::tiny_config;
using sagan::testing::TinyDataset;

namespace {
// t twice along dim 0 (undefined stays undefined).
Tensor twice(const Tensor& t) { return t.defined() ? concat({t, t}, 0) : t; }

StepInputs doubled(const StepInputs& in) {
  StepInputs out = in;
  for (StepInputs::DStep& d : out.d) d = {twice(d.images), twice(d.labels), twice(d.z), twice(d.fake_labels)};
  out.z = twice(in.z);
  out.fake_labels = twice(in.fake_labels);
  return out;
}

TrainConfig small(int64_t accumulate) {
  TrainConfig c = tiny_config();
  c.batch_size = 2;
  c.n_dis = 2;
  c.grad_clip = 1.0;  // the norm is taken of the accumulated gradient
  c.accumulate = accumulate;
  return c;
}
}  // namespace

// Each pass's loss is scaled by 1/2, so the two passes' gradients add up
// to the one pass's, as do the losses, D's outputs and the passes' BN
// statistics averaged: in float64 up to the order of sums (a weight with
// two gradient terms in a pass, as every SN weight has, adds them to the
// first pass's in another order), well below what a second power iteration
// in the second pass, a pass starting from the other's BN statistics or a
// loss left unscaled (its gradient norm) would show.
TEST_CASE("accumulation: 2 passes over copies of a micro-batch are one update on it", "[trainer][accumulate]") {
  auto ds = std::make_shared<TinyDataset>(16);
  Trainer one(small(1), ds, DType::F64), two(small(2), ds, DType::F64);
  for (int step = 1; step <= 3; ++step) {
    const StepInputs in = one.draw_inputs();
    const StepStats a = one.step(in), b = two.step(doubled(in));
    INFO("step " << step);
    CHECK(b.loss_d == Approx(a.loss_d).epsilon(1e-12));
    CHECK(b.loss_g == Approx(a.loss_g).epsilon(1e-12));
    CHECK(b.d_real == Approx(a.d_real).epsilon(1e-12));
    CHECK(b.d_fake == Approx(a.d_fake).epsilon(1e-12));
    CHECK(b.grad_norm_d == Approx(a.grad_norm_d).epsilon(1e-12));
    CHECK(b.grad_norm_g == Approx(a.grad_norm_g).epsilon(1e-12));
  }
  const NamedTensors ta = one.checkpoint_tensors(), tb = two.checkpoint_tensors();
  REQUIRE(ta.size() == tb.size());
  int compared = 0;
  double worst = 0;
  for (size_t i = 0; i < ta.size(); ++i) {
    if (ta[i].first.rfind("trainer.", 0) == 0) continue;  // counters: `two` drew nothing itself
    INFO(ta[i].first);
    REQUIRE(ta[i].first == tb[i].first);
    const std::vector<double> x = ta[i].second.to_vector(), y = tb[i].second.to_vector();
    REQUIRE(x.size() == y.size());
    double scale = 1.0, d = 0;  // relative to the largest value, or absolute below 1
    for (size_t j = 0; j < x.size(); ++j) {
      scale = std::max(scale, std::abs(x[j]));
      d = std::max(d, std::abs(x[j] - y[j]));
    }
    CHECK(d <= 1e-10 * scale);
    worst = std::max(worst, d / scale);
    ++compared;
  }
  CHECK(compared > 50);  // networks, G_ema, Adam moments, SN vectors, BN statistics
  CHECK(worst > 0);      // the order of sums does differ: the comparison is not vacuous
}

// Different micro-batches, n_dis 1: the logged D values of the first
// iteration come from the initial networks, and G's BN statistics from G's
// forwards before its update, so each is the mean of what each pass's
// micro-batch alone gives (a trainer fed it twice, by the test above).
TEST_CASE("accumulation: values and BN statistics are the passes' means", "[trainer][accumulate]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = small(2);
  c.n_dis = 1;
  Trainer two(c, ds, DType::F64), first(c, ds, DType::F64), second(c, ds, DType::F64);
  const StepInputs in = two.draw_inputs();
  REQUIRE(in.d.size() == 1);
  CHECK(in.d[0].images.size(0) == 4);  // 2 passes x batch 2
  CHECK(in.z.size(0) == 4);
  // Pass k's micro-batch, twice.
  auto pass = [](const StepInputs& s, int64_t k) {
    auto rows = [&](const Tensor& t) { return t.defined() ? t.slice(0, 2 * k, 2 * k + 2).contiguous() : t; };
    StepInputs out = s;
    for (StepInputs::DStep& d : out.d) d = {rows(d.images), rows(d.labels), rows(d.z), rows(d.fake_labels)};
    out.z = rows(s.z);
    out.fake_labels = rows(s.fake_labels);
    return doubled(out);
  };
  const StepStats both = two.step(in), a = first.step(pass(in, 0)), b = second.step(pass(in, 1));
  CHECK(both.loss_d == Approx((a.loss_d + b.loss_d) / 2).epsilon(1e-12));
  CHECK(both.d_real == Approx((a.d_real + b.d_real) / 2).epsilon(1e-12));
  CHECK(both.d_fake == Approx((a.d_fake + b.d_fake) / 2).epsilon(1e-12));
  CHECK(a.loss_d != b.loss_d);  // the passes saw different data
  int stats = 0;
  for (auto& [name, t] : two.generator().named_buffers()) {
    if (name.find("running_") == std::string::npos) continue;
    INFO(name);
    const std::vector<double> got = t.to_vector(), x = first.generator().tensor(name).to_vector(),
                              y = second.generator().tensor(name).to_vector();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx((x[i] + y[i]) / 2).epsilon(1e-12).margin(1e-14));
    CHECK_FALSE(bitwise_equal(first.generator().tensor(name), second.generator().tensor(name)));
    ++stats;
  }
  CHECK(stats > 0);
}

TEST_CASE("accumulation: a resumed run of 2 passes continues bit for bit", "[trainer][accumulate][long]") {
  TrainConfig c = small(2);
  c.unconditional = GENERATE(false, true);  // with and without labels to split
  INFO("unconditional " << c.unconditional);
  c.diffaug = "color,translation,cutout";       // each pass's own DiffAugment stream, placed from the step
  auto ds = std::make_shared<TinyDataset>(12);  // 3 global batches of 4 an epoch: the resume crosses epochs
  sagan::testing::ResumeRun run = sagan::testing::run_straight_and_resumed(c, ds, 4, 2);
  sagan::testing::check_same_logged_values(run);
  sagan::testing::check_same_state(*run.straight, *run.resumed);
}

// The passes' loops, BN copies and averages recorded as a device graph
// and replayed (on the CPU a replay runs the iteration again).
TEST_CASE("accumulation: a step graph trains as plain steps, bit for bit", "[trainer][accumulate][long]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = small(2);
  c.diffaug = "color,translation,cutout";
  c.ema_start = 2;  // both EMA phases, each recorded on its own
  Trainer graph(c, ds), plain(c, ds);
  graph.set_step_graph(true);
  for (int i = 0; i < 4; ++i) {
    const StepStats a = graph.step(), b = plain.step();
    CHECK(a.loss_d == b.loss_d);
    CHECK(a.loss_g == b.loss_g);
  }
  sagan::testing::check_same_state(graph, plain);
}

TEST_CASE("accumulation: a resume keeps the number of passes, however split", "[trainer][accumulate]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TempDir dir;
  const std::string ckpt = dir / "two_passes.safetensors";
  {
    Trainer t(small(2), ds);
    t.step();
    t.save_checkpoint(ckpt);
  }
  Trainer plain(small(1), ds);
  CHECK_THROWS_WITH(plain.load_checkpoint(ckpt),
                    Catch::Contains("written by a run of 1 rank(s) x 2 pass(es) of 2 (global batch 4), resumed with "
                                    "1 rank(s) x 1 pass(es)") &&
                        Catch::Contains("give --accumulate 2"));
  Trainer three(small(3), ds);
  CHECK_THROWS_WITH(three.load_checkpoint(ckpt), Catch::Contains("with 1 rank(s), give --accumulate 2"));
  // Two ranks' checkpoint on one process: accepted with --accumulate 2
  // (dp_check accumulate trains it on), refused without.
  TrainConfig ranks = small(1);
  ranks.world_size = 2;
  CHECK_NOTHROW(check_resume_passes("ckpt", ranks, 1, 2));
  CHECK_THROWS_WITH(check_resume_passes("ckpt", ranks, 1, 1), Catch::Contains("give --accumulate 2"));
  // --sync-bn refuses --accumulate: the remedy says to turn it off, or to launch the run's ranks.
  ranks.sync_bn = true;
  CHECK_THROWS_WITH(check_resume_passes("ckpt", ranks, 1, 1),
                    Catch::Contains("launch 2 rank(s), or with 1 rank(s) give --accumulate 2 --no-sync-bn"));
  ranks.world_size = 3;
  CHECK_THROWS_WITH(check_resume_passes("ckpt", ranks, 2, 1),
                    Catch::Contains("with --accumulate 3 / ranks and --no-sync-bn"));
  ranks.sync_bn = false;
  CHECK_THROWS_WITH(check_resume_passes("ckpt", ranks, 2, 1),
                    Catch::Contains("launch 3 rank(s), or a number of ranks that divides 3 with --accumulate 3 / "
                                    "ranks"));
  ranks.world_size = 1;
  CHECK_THROWS_WITH(check_resume_passes("ckpt", ranks, 2, 1), Catch::Contains("launch 1 rank, without --accumulate"));
}

TEST_CASE("accumulation: bad settings and inputs are refused, naming them", "[trainer][accumulate]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = small(0);
  CHECK_THROWS_WITH(Trainer(c, ds), Catch::Contains("TrainConfig.accumulate (--accumulate)"));
  c = small(2);
  c.sync_bn = true;
  CHECK_THROWS_WITH(Trainer(c, ds), Catch::Contains("TrainConfig.accumulate (--accumulate): 2 passes with "
                                                    "TrainConfig.sync_bn (--sync-bn)") &&
                                        Catch::Contains("never holds at once"));
  c = small(3);
  c.batch_size = 6;
  CHECK_THROWS_WITH(Trainer(c, ds),
                    Catch::Contains("data set tiny has 16 images, fewer than one global batch of --batch-size 6 x "
                                    "--accumulate 3"));
  // Inputs a caller gives must split into the passes.
  Trainer two(small(2), ds);
  StepInputs in = two.draw_inputs();
  in.d[1].images = in.d[1].images.slice(0, 0, 3).contiguous();
  CHECK_THROWS_WITH(two.step(in), Catch::Contains("images holds 3 rows, not a positive multiple of --accumulate 2"));
  in = two.draw_inputs();
  in.d[0].labels = concat({in.d[0].labels, in.d[0].labels.slice(0, 0, 1)}, 0);
  CHECK_THROWS_WITH(two.step(in), Catch::Contains("labels holds 5 rows for 4 rows of images"));
  in = two.draw_inputs();
  in.fake_labels = in.fake_labels.slice(0, 0, 2).contiguous();
  CHECK_THROWS_WITH(two.step(in), Catch::Contains("fake_labels holds 2 rows for 4 rows of z"));
  CHECK(two.step_count() == 0);
}

// A NaN in the second pass's latents only: the first D update is judged on
// the passes' mean, so it and the rest of the iteration are dropped, and
// the forwards' changes to the buffers (each pass's BN statistics, the SN
// vectors) go back.
TEST_CASE("accumulation: a NaN in one pass drops the iteration under --on-nan skip", "[trainer][accumulate]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = small(2);
  c.on_nan = "skip";
  Trainer t(c, ds);
  t.step();
  const NamedTensors before = t.checkpoint_tensors();
  StepInputs in = t.draw_inputs();
  std::vector<double> z = in.d[0].z.to_vector();
  for (size_t i = z.size() / 2; i < z.size(); ++i) z[i] = std::nan("");  // pass 1's rows
  in.d[0].z = Tensor::from_vector(z, in.d[0].z.shape(), DType::F64).to(DType::F32);
  const StepStats s = t.step(in);
  CHECK(s.skipped);
  const NamedTensors after = t.checkpoint_tensors();
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i].first.rfind("trainer.", 0) == 0) continue;  // the step and skip counters move on
    INFO(before[i].first);
    CHECK(bitwise_equal(before[i].second, after[i].second));
  }
  CHECK(std::isfinite(t.step().loss_d));  // and training goes on
}

namespace {
// One rank of a data-parallel job (as Open MPI's communicator reports
// itself) that counts the all-reduces started.
struct CountingRank : dist::SingleCommunicator {
  int started = 0;
  const char* backend_name() const override { return "mpi"; }
  std::unique_ptr<dist::PendingReduce> start_all_reduce_sum(const Tensor& t) override {
    ++started;
    return SingleCommunicator::start_all_reduce_sum(t);
  }
};
}  // namespace

// Only the last pass's backward reduces gradients: as many all-reduces an
// iteration as without accumulation, started during backward.
TEST_CASE("accumulation: the gradient buckets are reduced once an update", "[trainer][accumulate][data_parallel]") {
  auto ds = std::make_shared<TinyDataset>(16);
  auto count = [&](int64_t accumulate, int& in_backward) {
    auto comm = std::make_shared<CountingRank>();
    Trainer t(small(accumulate), ds, DType::F32, comm);
    REQUIRE(t.data_parallel() != nullptr);
    t.step();
    in_backward = t.data_parallel()->d_buckets().launched_in_backward();
    return comm->started;
  };
  int one_in_backward = 0, two_in_backward = 0;
  const int one = count(1, one_in_backward), two = count(2, two_in_backward);
  CHECK(one > 0);
  CHECK(two == one);
  CHECK(two_in_backward > 0);
  CHECK(two_in_backward == one_in_backward);
}
