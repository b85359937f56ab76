// dp_check: checks of data-parallel training that need several processes,
// run by ctest under mpirun -np 2 (tests/mpi/CMakeLists.txt, label mpi).
// Every rank runs the same check; the exit code is non-zero on any rank
// whose check fails (mpirun then fails the job).
//
//   dp_check equivalence f64|f32 K   K steps on 2 ranks x batch 2 (--sync-bn,
//       n_dis 2, clipping) reach the parameters of one process with batch 4
//       fed the same images and latents (the ranks' together); the ranks'
//       real images are the single loader's batches of 4; some gradient
//       bucket is launched during backward.
//   dp_check accumulate f64|f32 K P  K steps on N ranks x P passes x batch 2
//       (per-rank BN statistics, DiffAugment) reach the parameters and G
//       buffers of one process with --accumulate N x P, whose own draws are
//       the ranks' (images, labels, latents: equal). Then each goes on from
//       the other's checkpoint (N x P passes split the other way), K more
//       steps alongside the ranks, as they do.
//   dp_check sync_bn                 cross-replica BN on 2 halves of a batch
//       = batch_norm on the whole batch: outputs, input gradients, summed
//       parameter gradients, running statistics (float64).
//   dp_check resume K                K steps (through a step graph) = K/2
//       steps, a checkpoint, a new trainer resuming from it, K/2 steps: every
//       tensor of every rank's state equal, bit for bit.
//   dp_check custom                  run_training on a program's own data set
//       (RunOptions::dataset, its factory called on every rank): 2 steps and
//       a resume to 4 log what 4 straight steps log; a factory that fails on
//       rank 1 alone ends every rank with rank 1's message.
//   dp_check nan                     (see nan_ranks)
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"
#include "sagan/dist/agree.h"
#include "sagan/dist/launch.h"
#include "sagan/layers/batch_norm.h"
#include "sagan/models/data_parallel.h"
#include "sagan/models/train_run.h"
#include "sagan/models/trainer.h"
#include "tests/support/logged_losses.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;

namespace {

int failures = 0;
std::shared_ptr<dist::Communicator> world;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    fmt::print(stderr, "dp_check rank {}: FAILED: {}\n", world->rank(), what);
  }
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = testing::max_keep_nan(m, std::abs(x[i] - y[i]));
  return m;
}

// The ranks' tensors concatenated along dim 0, in rank order, on every rank
// (an all-reduce of zero-padded float64 copies: exact for float32 values
// and small integers).
Tensor gather(const Tensor& t) {
  const int64_t n = t.size(0), N = world->size();
  Shape s = t.shape();
  s[0] = n * N;
  Tensor all = Tensor::zeros(s, DType::F64);
  all.narrow(0, n * world->rank(), n).copy_(t.to(DType::F64));
  world->all_reduce_sum(all);
  if (t.dtype() == DType::I64) {
    std::vector<double> v = all.to_vector();
    return Tensor::from_vector(std::vector<int64_t>(v.begin(), v.end()), s);
  }
  return all.to(t.dtype());
}

TrainConfig tiny_config(int64_t batch) {
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.batch_size = batch;
  c.n_dis = 2;
  c.grad_clip = 1.0;  // applies after the average (the norms here are above 1)
  c.ema_start = 1;
  c.ema_decay = 0.9;
  c.device = "cpu";
  c.seed = 7;
  c.sync_bn = true;
  c.check_sync_every = 1;
  return c;
}

// a and b trained alike for `steps` steps, one as ranks and one not.
// float64: the same arithmetic up to the order of sums, so tight. float32:
// sums in another order differ by ~1e-7 relative, and Adam turns such a
// difference into up to 2 lr a step where a gradient component is near
// zero and its sign flips (the update is about lr x sign(g)): parameters
// within 2 lr K; G's buffers (BN statistics, SN vectors) follow G's
// parameters, so within G's bound too, relative to their largest value.
void compare_trainers(const std::string& mode, Trainer& a, Trainer& b, DType dtype, int64_t steps) {
  const bool f64 = dtype == DType::F64;
  auto compare = [&](const std::string& what, const Tensor& x, const Tensor& y, double lr, bool relative) {
    std::vector<double> ref_values = y.to_vector();
    double scale = 1.0;
    for (double v : ref_values) scale = std::max(scale, std::abs(v));
    const double tol = f64 ? 1e-10 * scale : 2.0 * lr * static_cast<double>(steps) * (relative ? scale : 1.0);
    const double d = max_abs_diff(x, y);
    if (world->rank() == 0)
      fmt::print("dp_check {} {}: {} max |difference| {:.3g} (tolerance {:.3g})\n", mode, dtype_name(dtype), what, d,
                 tol);
    expect(d <= tol, fmt::format("{}: {} differ by {} > {}", mode, what, d, tol));
  };
  const TrainConfig& c = a.config();
  compare("G parameters", a.generator().flat_parameters()->data(), b.generator().flat_parameters()->data(), c.adam_g.lr,
          false);
  compare("D parameters", a.discriminator().flat_parameters()->data(), b.discriminator().flat_parameters()->data(),
          c.adam_d.lr, false);
  compare("G_ema parameters", a.ema_generator().flat_parameters()->data(), b.ema_generator().flat_parameters()->data(),
          c.adam_g.lr, false);
  auto ab = a.generator().named_buffers(), bb = b.generator().named_buffers();
  expect(ab.size() == bb.size(), fmt::format("{}: G has {} buffers against {}", mode, ab.size(), bb.size()));
  for (size_t i = 0; i < std::min(ab.size(), bb.size()); ++i)
    compare("G." + ab[i].first, ab[i].second, bb[i].second, c.adam_g.lr, true);
}

int equivalence(DType dtype, int64_t steps) {
  const int64_t B = 2, N = world->size();
  auto ds = std::make_shared<testing::TinyDataset>(24);
  Trainer dp(tiny_config(B), ds, dtype, world);
  TrainConfig ref_cfg = tiny_config(B * N);
  ref_cfg.sync_bn = false;
  Trainer ref(ref_cfg, ds, dtype);  // every rank runs it: the same result everywhere
  int launched = 0;
  for (int64_t k = 0; k < steps; ++k) {
    StepInputs in = dp.draw_inputs();
    StepInputs all = ref.draw_inputs();  // the single loader's images, batch B x N
    for (size_t i = 0; i < in.d.size(); ++i) {
      Tensor images = gather(in.d[i].images);
      expect(max_abs_diff(images, all.d[i].images) == 0.0,
             fmt::format("step {}: the ranks' real images are not the single loader's batch", k + 1));
      all.d[i] = {images, gather(in.d[i].labels), gather(in.d[i].z), gather(in.d[i].fake_labels)};
    }
    all.z = gather(in.z);
    all.fake_labels = gather(in.fake_labels);
    dp.step(in);
    launched += dp.data_parallel()->d_buckets().launched_in_backward();
    ref.step(all);
  }
  compare_trainers("equivalence", dp, ref, dtype, steps);
  expect(launched > 0, "no gradient bucket was launched during backward");
  if (world->rank() == 0)
    fmt::print("dp_check: {} D buckets launched during backward over {} steps\n", launched, steps);
  return failures;
}

int accumulate(DType dtype, int64_t steps, int64_t per_rank) {
  const int64_t N = world->size();
  auto ds = std::make_shared<testing::TinyDataset>(48);
  TrainConfig cfg = tiny_config(2);
  cfg.sync_bn = false;  // --accumulate refuses it: each pass keeps its own statistics, as each rank here
  cfg.diffaug = "color,translation,cutout";
  cfg.accumulate = per_rank;
  TrainConfig one_cfg = cfg;
  one_cfg.accumulate = N * per_rank;
  one_cfg.check_sync_every = 0;
  Trainer ranks(cfg, ds, dtype, world);
  Trainer one(one_cfg, ds, dtype);  // every rank runs it: the same result everywhere
  auto same = [&](const Tensor& mine, const Tensor& theirs, const std::string& what, int64_t k) {
    expect(max_abs_diff(gather(mine), theirs) == 0.0,
           fmt::format("step {}: the passes' {} are not the ranks'", k + 1, what));
  };
  for (int64_t k = 0; k < steps; ++k) {
    StepInputs in = ranks.draw_inputs(), all = one.draw_inputs();
    for (size_t i = 0; i < in.d.size(); ++i) {
      same(in.d[i].images, all.d[i].images, "images", k);
      same(in.d[i].labels, all.d[i].labels, "labels", k);
      same(in.d[i].z, all.d[i].z, "D-step latents", k);
      same(in.d[i].fake_labels, all.d[i].fake_labels, "D-step fake labels", k);
    }
    same(in.z, all.z, "G-step latents", k);
    same(in.fake_labels, all.fake_labels, "G-step fake labels", k);
    ranks.step(in);
    one.step(all);
  }
  const std::string mode = fmt::format("accumulate {} x {}", N, per_rank);
  compare_trainers(mode, ranks, one, dtype, steps);
  // Each goes on from the other's checkpoint, split the other way.
  const std::string base = dist::broadcast_text(
      *world, (std::filesystem::temp_directory_path() / fmt::format("dp_check_accumulate_{}", ::getpid())).string());
  const std::string from_ranks = base + "_ranks.safetensors", from_one = base + "_one.safetensors";
  if (world->rank() == 0) {
    ranks.save_checkpoint(from_ranks);
    one.save_checkpoint(from_one);
  }
  world->barrier();
  Trainer one_resumed(one_cfg, ds, dtype), ranks_resumed(cfg, ds, dtype, world);
  one_resumed.load_checkpoint(from_ranks);
  ranks_resumed.load_checkpoint(from_one);
  for (int64_t k = 0; k < steps; ++k) {
    ranks.step();
    one_resumed.step();
    ranks_resumed.step();
  }
  compare_trainers(mode + ", one process resumed from the ranks", ranks, one_resumed, dtype, 2 * steps);
  compare_trainers(mode + ", ranks resumed from one process", ranks, ranks_resumed, dtype, 2 * steps);
  world->barrier();
  if (world->rank() == 0) {
    std::filesystem::remove(from_ranks);
    std::filesystem::remove(from_one);
  }
  return failures;
}

int sync_bn() {
  const int64_t n = 4, c = 3, N = world->size(), per = n / N;
  Rng gen(3);
  Tensor x_all = Tensor::randn({n, c, 5, 5}, gen, DType::F64), w_out = Tensor::randn({n, c, 5, 5}, gen, DType::F64);
  Tensor gamma = Tensor::randn({c}, gen, DType::F64), beta = Tensor::randn({c}, gen, DType::F64);
  auto run = [&](bool synced, Tensor x, Tensor w) {
    nn::BatchNorm2d bn(c);
    bn.to(DType::F64);
    {
      NoGradGuard ng;
      bn.tensor("weight").copy_(gamma);
      bn.tensor("bias").copy_(beta);
    }
    if (synced) bn.set_sync_communicator(world);
    x = x.detach();
    x.set_requires_grad(true);
    Tensor y = bn.forward(x);
    sum(mul(y, w)).backward();
    return std::vector<Tensor>{y.detach(),
                               x.grad(),
                               bn.tensor("weight").grad(),
                               bn.tensor("bias").grad(),
                               bn.tensor("running_mean"),
                               bn.tensor("running_var")};
  };
  const int64_t r = world->rank();
  std::vector<Tensor> mine = run(true, x_all.narrow(0, r * per, per).contiguous(), w_out.narrow(0, r * per, per));
  std::vector<Tensor> ref = run(false, x_all, w_out);
  for (int i : {2, 3}) world->all_reduce_sum(mine[static_cast<size_t>(i)]);  // parameter gradients: summed over ranks
  const char* names[] = {"output", "input gradient", "weight gradient", "bias gradient", "running_mean", "running_var"};
  for (size_t i = 0; i < mine.size(); ++i) {
    Tensor want = i < 2 ? ref[i].narrow(0, r * per, per) : ref[i];
    const double d = max_abs_diff(mine[i], want);
    if (r == 0) fmt::print("dp_check sync_bn: {} max |difference| {:.3g}\n", names[i], d);
    expect(d < 1e-12, fmt::format("sync BN {} differs from batch_norm on the whole batch by {}", names[i], d));
  }
  return failures;
}

int resume(int64_t steps) {
  auto ds = std::make_shared<testing::TinyDataset>(10);  // 2 global batches of 4 an epoch: resume crosses epochs
  TrainConfig cfg = tiny_config(2);
  cfg.sync_bn = false;  // per-rank statistics, averaged after each step
  cfg.diffaug = "color,translation,cutout";
  // Named after rank 0's process: two test runs at once do not collide.
  const std::string path = dist::broadcast_text(
      *world,
      (std::filesystem::temp_directory_path() / fmt::format("dp_check_resume_{}.safetensors", ::getpid())).string());
  // The uninterrupted run goes through a step graph (on the CPU a replay
  // re-runs the iteration: the data-parallel step through Backend::capture
  // and the phases of Trainer::step); the interrupted one runs plain.
  Trainer straight(cfg, ds, DType::F32, world);
  straight.set_step_graph(true);
  for (int64_t k = 0; k < steps; ++k) straight.step();
  {
    Trainer first(cfg, ds, DType::F32, world);
    for (int64_t k = 0; k < steps / 2; ++k) first.step();
    if (world->rank() == 0) first.save_checkpoint(path);
  }
  world->barrier();
  Trainer resumed(cfg, ds, DType::F32, world);
  resumed.load_checkpoint(path);
  while (resumed.step_count() < steps) resumed.step();
  NamedTensors a = straight.checkpoint_tensors(), b = resumed.checkpoint_tensors();
  expect(a.size() == b.size(), "checkpoints hold different tensors");
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    expect(max_abs_diff(a[i].second, b[i].second) == 0.0,
           fmt::format("{} differs between the straight and the resumed run", a[i].first));
  world->barrier();
  if (world->rank() == 0) {
    std::filesystem::remove(path);
    fmt::print("dp_check resume: {} tensors equal after {} steps on {} ranks\n", a.size(), steps, world->size());
  }
  return failures;
}

int custom_run() {
  namespace fs = std::filesystem;
  const fs::path root = dist::broadcast_text(
      *world, (fs::temp_directory_path() / fmt::format("dp_check_custom_{}", ::getpid())).string());
  int calls = 0;
  RunOptions opt;
  opt.progress = false;
  opt.comm = world;
  opt.dataset = [&](const TrainConfig&) {
    ++calls;
    return std::make_shared<testing::TinyDataset>(10);  // 2 global batches of 4 an epoch
  };
  TrainConfig c = tiny_config(2);
  c.log_every = 1;
  c.sample_every = c.checkpoint_every = 2;
  const testing::StraightAndResumedLosses losses = testing::train_straight_and_resumed(c, opt, root, 4, 2);
  expect(calls == 3, fmt::format("the factory was called {} times on this rank, not 3", calls));
  if (world->rank() == 0) {
    const std::string& a = losses.straight;
    expect(std::count(a.begin(), a.end(), '\n') == 4, "the straight run logged no 4 rows:\n" + a);
    expect(losses.resumed == a, "the resumed run logged other losses than the straight one");
  }
  // A factory that fails on one rank: every rank stops with its message.
  RunOptions failing = opt;
  failing.dataset = [](const TrainConfig&) -> std::shared_ptr<data::Dataset> {
    if (world->rank() == 1) throw Error("faces.db: cannot open on this machine");
    return std::make_shared<testing::TinyDataset>(10);
  };
  c.run_dir = (root / "failing").string();
  try {
    run_training(c, failing);
    expect(false, "a factory that failed on rank 1 did not stop the run");
  } catch (const dist::AgreedError& e) {
    const std::string m = e.what();
    expect(m.find("rank 1 of 2") != std::string::npos && m.find("faces.db: cannot open") != std::string::npos,
           "the agreed stop message is not rank 1's: " + m);
  }
  world->barrier();
  if (world->rank() == 0) {
    expect(!fs::exists(root / "failing"), "the failed start left its run directory");
    fs::remove_all(root);
  }
  return failures;
}

// Rank 1's D goes bad (a parameter set to NaN): its gradients make every
// rank's averaged gradient norm NaN. --on-nan skip: every rank drops the
// update and rank 0's warning names rank 1; --on-nan stop: every rank ends
// with the same AgreedError, rank 1's own message (which tensor).
int nan_ranks() {
  auto ds = std::make_shared<testing::TinyDataset>(12);
  TrainConfig cfg = tiny_config(2);
  cfg.check_sync_every = 0;  // rank 1's parameters differ on purpose
  auto poison = [&](Trainer& t) {
    if (world->rank() != 1) return;
    NoGradGuard ng;
    for (auto& [name, p] : t.discriminator().named_parameters()) {
      p.fill_(NAN);
      break;
    }
  };
  cfg.on_nan = "skip";
  cfg.max_nan_skips = 3;
  {
    Trainer t(cfg, ds, DType::F32, world);
    poison(t);
    const StepStats s = t.step();
    expect(s.skipped, "the step with rank 1's NaN was not skipped");
    if (world->rank() == 0)
      expect(t.nan_guard().message().find("(non-finite first on rank 1 of 2: its gradients reached this rank's") !=
                 std::string::npos,
             "rank 0's skip message does not name rank 1: " + t.nan_guard().message());
  }
  cfg.on_nan = "stop";
  Trainer t(cfg, ds, DType::F32, world);
  poison(t);
  try {
    t.step();
    expect(false, "--on-nan stop did not stop");
  } catch (const dist::AgreedError& e) {
    const std::string m = e.what();
    expect(m.rfind("rank 1 of 2: step 1: D's update is not finite", 0) == 0 &&
               m.find("first non-finite tensor: parameter D.") != std::string::npos,
           "the agreed stop message is not rank 1's: " + m);
  }
  return failures;
}

// check_ranks_in_sync (--check-sync-every, and once after a resume): equal
// ranks pass; a D parameter changed on rank 1 alone is named, on every rank.
int sync_check() {
  auto ds = std::make_shared<testing::TinyDataset>(12);
  TrainConfig cfg = tiny_config(2);
  cfg.check_sync_every = 0;
  Trainer t(cfg, ds, DType::F32, world);
  t.check_ranks_in_sync("freshly built:", "unexpected");
  if (world->rank() == 1) {
    NoGradGuard ng;
    t.discriminator().named_parameters().front().second.fill_(0.5);
  }
  try {
    t.check_ranks_in_sync("--resume: after loading x,", "the ranks read different files");
    expect(false, "rank 1's changed D parameter was not found");
  } catch (const dist::AgreedError& e) {  // the same on every rank: printed once, no MPI_Abort
    const std::string m = e.what();
    expect(m.rfind("--resume: after loading x, the D parameters of rank 1 differ from rank 0's (hash ", 0) == 0 &&
               m.find("): the ranks read different files") != std::string::npos,
           "unexpected message: " + m);
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  world = dist::init_world(&argc, &argv);
  try {
    const std::string what = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (what == "equivalence" && argc == 4)
      rc = equivalence(std::string(argv[2]) == "f64" ? DType::F64 : DType::F32, std::stoll(argv[3]));
    else if (what == "accumulate" && argc == 5)
      rc =
          accumulate(std::string(argv[2]) == "f64" ? DType::F64 : DType::F32, std::stoll(argv[3]), std::stoll(argv[4]));
    else if (what == "sync_bn")
      rc = sync_bn();
    else if (what == "resume" && argc == 3)
      rc = resume(std::stoll(argv[2]));
    else if (what == "nan")
      rc = nan_ranks();
    else if (what == "sync_check")
      rc = sync_check();
    else if (what == "custom")
      rc = custom_run();
    else
      fmt::print(
          stderr,
          "usage: dp_check equivalence f64|f32 K | accumulate f64|f32 K P | sync_bn | resume K | custom | nan\n");
    std::fflush(stdout);
    if (rc == 0 && world->rank() == 0) fmt::print("dp_check {}: passed on {} ranks\n", what, world->size());
    return rc == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dp_check (rank {} of {}): error: {}\n", world->rank(), world->size(), e.what());
    std::fflush(stderr);
    if (world->size() > 1) world->abort(1);
    return 1;
  }
}
