// Never lose a good run (issue 12, docs/reliability.md): the NaN guard
// (--on-nan stop|skip), finite-only checkpoints and their readers, run
// directories left by a failed start, and resume leftovers (checkpoint
// temporaries, metrics rows and TensorBoard events past the checkpoint, a
// corrupt newest checkpoint).
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/image.h"
#include "sagan/core/io/safetensors.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/models/finite_check.h"
#include "sagan/models/run_recovery.h"
#include "sagan/models/train_run.h"
#include "sagan/models/trainer.h"
#include "tests/support/run_options.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensorboard_events.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::more_steps;
using sagan::testing::quiet_options;
using sagan::testing::resume_options;
using sagan::testing::TempDir;
using sagan::testing::tiny_config;
using sagan::testing::TinyDataset;
using sagan::testing::write_image_folder;
namespace fs = std::filesystem;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Element `k` of the parameter `name` of a flat model, set to `v`.
void poke(nn::Module& m, const std::string& name, float v, int64_t k = 0) {
  const nn::FlatParameters& flat = *m.flat_parameters();
  for (const nn::ParamRange& r : flat.ranges())
    if (r.name == name) {
      flat.data().data<float>()[r.offset + k] = v;
      return;
    }
  FAIL("no parameter " << name);
}

std::vector<double> values(const Tensor& t) { return t.to_vector(); }

TrainConfig folder_config(const fs::path& root) {
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.channels = "3";  // no header scan at start: a bad image is met in a step
  c.data_path = write_image_folder(root);
  c.log_every = 1;
  c.sample_every = 100;
  c.checkpoint_every = 2;
  c.run_dir = (root / "run").string();
  return c;
}

std::string slurp(const fs::path& p) {
  std::vector<uint8_t> b = io::read_file(p.string());
  return std::string(b.begin(), b.end());
}

// The first column of every row of a metrics CSV.
std::vector<int64_t> logged_steps(const fs::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  std::vector<int64_t> out;
  while (std::getline(in, line)) out.push_back(std::stoll(line.substr(0, line.find(','))));
  return out;
}

}  // namespace

// ---------------------------------------------------------------- the NaN guard

TEST_CASE("finiteness checks: one reduction per tensor, any magnitude", "[reliability][nan]") {
  CHECK(all_finite(Tensor::from_vector(std::vector<float>{3e38f, 3e38f, -3e38f}, {3})));  // a sum would overflow
  CHECK_FALSE(all_finite(Tensor::from_vector(std::vector<double>{1.0, std::nan(""), 2.0}, {3})));
  CHECK_FALSE(all_finite(Tensor::from_vector(std::vector<double>{1.0, -HUGE_VAL}, {2})));
  CHECK(all_finite(Tensor::from_vector(std::vector<int64_t>{1, 2}, {2})));
  NamedTensors ts = {{"a", Tensor::ones({2})}, {"b", Tensor::full({2}, kNaN)}, {"c", Tensor::full({1}, kNaN)}};
  CHECK(first_non_finite(ts) == std::optional<std::string>("b"));
}

TEST_CASE("on-nan stop: a non-finite update stops training, naming the step and the tensor", "[reliability][nan]") {
  auto ds = std::make_shared<TinyDataset>(16);
  Trainer t(tiny_config(), ds);
  t.step();
  // A NaN in one weight of D: it reaches D's outputs and the loss (relu
  // passes NaN on, as in PyTorch), so the guard stops before any optimiser
  // step, naming the values and the tensor.
  poke(t.discriminator(), "blocks.0.conv1.weight_orig", kNaN, 3);
  const std::vector<double> g_before = values(t.generator().flat_parameters()->data());
  const int64_t adam_steps = t.optimizer_d().step_count();
  REQUIRE_THROWS_WITH(t.step(),
                      Catch::Contains("step 2: D's update is not finite (loss_d = ") &&
                          Catch::Contains("D(x) = nan, D(G(z)) = nan, grad_norm_d = nan)") &&
                          Catch::Contains("first non-finite tensor: parameter D.blocks.0.conv1.weight_orig") &&
                          Catch::Contains("--on-nan stop"));
  CHECK(t.optimizer_d().step_count() == adam_steps);
  CHECK(values(t.generator().flat_parameters()->data()) == g_before);
  CHECK(t.step_count() == 1);
}

TEST_CASE("on-nan stop catches a diverging run (--lr-d 1e6 --lr-g 1e6) before its weights go bad",
          "[reliability][nan]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = tiny_config();
  c.adam_g.lr = c.adam_d.lr = 1e6;
  Trainer t(c, ds);
  std::string error;
  for (int i = 0; i < 20 && error.empty(); ++i) {
    try {
      t.step();
    } catch (const Error& e) {
      error = e.what();
    }
  }
  INFO(error);
  REQUIRE(!error.empty());
  // Which comes first depends on the run's rounding: a tensor that went
  // non-finite, or a norm whose float sum of squares overflowed while every
  // value stayed finite.
  CHECK_THAT(error, Catch::Matches("step [0-9]+: [DG]'s update is not finite .*first non-finite tensor: "
                                   "((parameter|buffer|gradient of) [DG]\\.|none \\(the values overflowed\\)).*",
                                   Catch::CaseSensitive::Yes));
  // Nothing non-finite was applied: the weights in memory are still finite.
  for (nn::Module* m : std::vector<nn::Module*>{&t.generator(), &t.discriminator(), &t.ema_generator()})
    CHECK(all_finite(m->flat_parameters()->data()));
}

TEST_CASE("on-nan skip puts back the buffers a dropped iteration's forwards changed", "[reliability][nan]") {
  // One latent of the D step is NaN (a transient overflow in G's forward):
  // G's BN statistics took it before the guard could judge. Dropped, the
  // iteration must leave them as they were, or the next EMA copy carries
  // NaN into G_ema and no checkpoint can be written again.
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = tiny_config();
  c.on_nan = "skip";
  c.max_nan_skips = 3;
  c.ema_start = 1;
  Trainer t(c, ds);
  const bool graph = GENERATE(false, true);
  INFO("step graph " << graph);
  t.set_step_graph(graph);
  REQUIRE_FALSE(t.step().skipped);
  auto buffers = [](nn::Module& m) {
    std::vector<double> out;
    for (const auto& [name, b] : m.named_buffers()) {
      const std::vector<double> v = b.to_vector();
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  };
  const std::vector<double> g_before = buffers(t.generator()), d_before = buffers(t.discriminator());
  StepInputs in = t.draw_inputs();
  in.d[0].z = in.d[0].z.clone();
  in.d[0].z.data<float>()[0] = kNaN;
  REQUIRE(t.step(in).skipped);
  CHECK(buffers(t.generator()) == g_before);
  CHECK(buffers(t.discriminator()) == d_before);
  for (int i = 0; i < 2; ++i) REQUIRE_FALSE(t.step().skipped);
  for (nn::Module* m : {static_cast<nn::Module*>(&t.generator()), static_cast<nn::Module*>(&t.ema_generator())})
    for (const auto& [name, b] : m->named_buffers()) {
      INFO(name);
      CHECK(all_finite(b));
    }
}

TEST_CASE("on-nan skip drops the update, counts it, and stops after --max-nan-skips in a row",
          "[reliability][nan][long]") {
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = tiny_config();
  c.on_nan = "skip";
  c.max_nan_skips = 3;
  Trainer t(c, ds);
  const bool graph = GENERATE(false, true);  // plain steps, and a step graph (the gates are on the device)
  INFO("step graph " << graph);
  t.set_step_graph(graph);
  StepStats s = t.step();
  CHECK_FALSE(s.skipped);
  CHECK(s.skipped_steps == 0);
  // D's outputs are not finite (a NaN in its last layer's bias): the whole
  // iteration's update is dropped.
  poke(t.discriminator(), "linear.bias", kNaN);
  const std::vector<double> g_before = values(t.generator().flat_parameters()->data()),
                            d_before = values(t.discriminator().flat_parameters()->data()),
                            ema_before = values(t.ema_generator().flat_parameters()->data());
  s = t.step();
  CHECK(s.skipped);
  CHECK(s.step == 2);  // the iteration counts: its data and latents were used
  CHECK(s.skipped_steps == 1);
  CHECK_THAT(t.nan_guard().message(),
             Catch::Contains("step 2: D's update") && Catch::Contains("parameter D.linear.bias"));
  auto same = [](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
    return true;
  };
  CHECK(same(values(t.discriminator().flat_parameters()->data()), d_before));  // no Adam step on D,
  CHECK(values(t.generator().flat_parameters()->data()) == g_before);          // none on G,
  CHECK(values(t.ema_generator().flat_parameters()->data()) == ema_before);    // no EMA update
  CHECK(t.optimizer_d().step_count() == 1);
  CHECK(t.optimizer_g().step_count() == 1);
  // A finite weight again: training goes on, the count of skips kept.
  poke(t.discriminator(), "linear.bias", 0.0f);
  s = t.step();
  CHECK_FALSE(s.skipped);
  CHECK(s.skipped_steps == 1);
  CHECK(t.optimizer_g().step_count() == 2);
  // It survives a checkpoint.
  TempDir dir;
  t.save_checkpoint(dir / "c.safetensors");
  Trainer r(c, ds);
  r.load_checkpoint(dir / "c.safetensors");
  CHECK(r.nan_guard().skipped_total() == 1);
  // Three in a row: stopped.
  poke(t.discriminator(), "linear.bias", kNaN);
  CHECK(t.step().skipped);
  CHECK(t.step().skipped);
  // The count in a row survives a checkpoint too: a run resumed here stops
  // at the same step as the uninterrupted one (it used to start again at 0).
  // (The poked NaN is taken out for the save, which refuses non-finite
  // weights, and put back in both.)
  poke(t.discriminator(), "linear.bias", 0.0f);
  t.save_checkpoint(dir / "c2.safetensors");
  Trainer r2(c, ds);
  r2.load_checkpoint(dir / "c2.safetensors");
  CHECK(r2.nan_guard().skipped_in_a_row() == 2);
  CHECK(r2.nan_guard().skipped_total() == 3);
  poke(t.discriminator(), "linear.bias", kNaN);
  poke(r2.discriminator(), "linear.bias", kNaN);
  REQUIRE_THROWS_WITH(t.step(), Catch::Contains("step 6:") && Catch::Contains("parameter D.linear.bias") &&
                                    Catch::Contains("3 iterations in a row") && Catch::Contains("--max-nan-skips 3"));
  REQUIRE_THROWS_WITH(r2.step(), Catch::Contains("step 6:") && Catch::Contains("3 iterations in a row"));
}

TEST_CASE("the settings on_nan and max_nan_skips are checked settings", "[reliability][nan][config]") {
  TrainConfig c = tiny_config();
  c.on_nan = "ignore";
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--on-nan: 'ignore' is not one of stop, skip"));
  c.on_nan = "skip";
  c.max_nan_skips = 0;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--max-nan-skips: must be positive"));
  c.max_nan_skips = 4;
  TrainConfig back = TrainConfig::from_json(c.to_json(), "test");
  CHECK(back.on_nan == "skip");
  CHECK(back.max_nan_skips == 4);
  CHECK(TrainConfig().on_nan == "stop");
}

// ---------------------------------------------------------------- finite checkpoints

TEST_CASE("a checkpoint with a non-finite tensor is never written", "[reliability][checkpoint]") {
  auto ds = std::make_shared<TinyDataset>(16);
  Trainer t(tiny_config(), ds);
  t.step();
  TempDir dir;
  const std::string path = dir / "step_1.safetensors";
  poke(t.ema_generator(), "linear.bias", kNaN, 2);
  REQUIRE_THROWS_WITH(t.save_checkpoint(path),
                      Catch::StartsWith(path + ": not written") && Catch::Contains("'G_ema.linear.bias'"));
  CHECK(dir.count() == 0);  // no file, no temporary
  poke(t.ema_generator(), "linear.bias", 0.0f, 2);
  // Adam's moments are checked too.
  t.optimizer_d().moment_buffers()[1].data<float>()[0] = HUGE_VALF;
  REQUIRE_THROWS_WITH(t.save_checkpoint(path), Catch::Contains("'opt_D.exp_avg_sq."));
  t.optimizer_d().moment_buffers()[1].data<float>()[0] = 0.0f;
  t.save_checkpoint(path);
  CHECK(fs::exists(path));
}

TEST_CASE("every checkpoint reader refuses non-finite weights, naming the file and the tensor",
          "[reliability][checkpoint]") {
  auto ds = std::make_shared<TinyDataset>(16);
  Trainer t(tiny_config(), ds);
  t.step();
  TempDir dir;
  const std::string good = dir / "good.safetensors", bad = dir / "bad.safetensors";
  t.save_checkpoint(good);
  // What a diverged run wrote before the guard: the same file with a NaN in G_ema.
  io::SafetensorsFile f = io::load_safetensors(good);
  NamedTensors tensors;
  for (auto& [name, v] : f.tensors) {
    Tensor c = v.clone();
    if (name == "G_ema.linear.weight_orig") c.data<float>()[5] = kNaN;
    tensors.emplace_back(name, c);
  }
  io::save_safetensors(bad, tensors, f.metadata);
  // open_checkpoint is every reader's way in: sagan-sample, -eval, -attention,
  // -export, -class-diversity and the trainer's --resume.
  REQUIRE_THROWS_WITH(open_checkpoint(bad), Catch::StartsWith(bad + ": tensor 'G_ema.linear.weight_orig' holds NaN"));
  Trainer r(tiny_config(), ds);
  REQUIRE_THROWS_WITH(r.load_checkpoint(bad), Catch::Contains("G_ema.linear.weight_orig"));
  CHECK_NOTHROW(open_checkpoint(good));
}

TEST_CASE("a diverging run stops with an error and keeps its good checkpoints", "[reliability][nan][run][long]") {
  TempDir root;
  TrainConfig c = folder_config(root.path);
  c.checkpoint_every = 1;
  c.keep_checkpoints = 2;
  c.steps = 2;
  run_training(c, quiet_options());  // two good checkpoints
  // Resumed with learning rates that make it diverge at once. (On this data
  // 1e6 only gives finite garbage, losses near 1e6; 1e30 weights overflow the
  // spectral norm's sigma in the first update. The Trainer test above meets
  // an overflow with 1e6.)
  TrainConfig more = more_steps(30);
  more.adam_g.lr = more.adam_d.lr = 1e30;
  RunOptions o = resume_options(c.run_dir);
  o.given.from_flag("lr_g", "--lr-g");
  o.given.from_flag("lr_d", "--lr-d");
  REQUIRE_THROWS_WITH(run_training(more, o), Catch::Contains("update is not finite") &&
                                                 Catch::Contains("first non-finite tensor: gradient of") &&
                                                 Catch::Contains("run dir " + c.run_dir));
  const std::vector<std::string> kept = list_checkpoints(c.run_dir);
  REQUIRE(kept.size() == 2);
  for (const std::string& p : kept) CHECK_NOTHROW(open_checkpoint(p));  // finite, all of them
  CHECK(kept.front() == checkpoint_path(c.run_dir, 2));
  // And the run continues from the newest with sane settings.
  more = more_steps(4);
  more.adam_g.lr = more.adam_d.lr = 1e-4;
  CHECK_NOTHROW(run_training(more, o));
  CHECK(list_checkpoints(c.run_dir).front() == checkpoint_path(c.run_dir, 4));
}

// ---------------------------------------------------------------- run directories

TEST_CASE("a run that failed before its first checkpoint (a corrupt image) can be started again or resumed",
          "[reliability][run][long]") {
  TempDir root;
  TrainConfig c = folder_config(root.path);
  c.data_path = write_image_folder(root.path, /*corrupt=*/true);
  c.checkpoint_every = 100;
  c.steps = 6;
  REQUIRE_THROWS_WITH(run_training(c, quiet_options()), Catch::Contains("class1"));  // the bad image, by name
  REQUIRE(fs::exists(fs::path(c.run_dir) / "config.json"));
  CHECK(list_checkpoints(c.run_dir).empty());
  CHECK(run_never_checkpointed(c.run_dir));
  write_image_folder(root.path);  // the images fixed

  // --resume: no checkpoint yet, so it starts from step 0 with the run's config.
  c.checkpoint_every = 2;
  run_training(more_steps(2), resume_options(c.run_dir));
  CHECK(latest_checkpoint(c.run_dir).find("step_00000002") != std::string::npos);
  CHECK(logged_steps(fs::path(c.run_dir) / "metrics.csv") == std::vector<int64_t>{1, 2});

  // Starting over in a directory left with only config.json works too.
  TempDir other;
  TrainConfig d = folder_config(other.path);
  fs::create_directories(d.run_dir);
  io::write_file_atomic((fs::path(d.run_dir) / "config.json").string(), d.to_json());
  // The killed attempt's sample grid of step 50 must not pass for this run's.
  const fs::path samples = fs::path(d.run_dir) / "samples";
  fs::create_directories(samples);
  io::write_file_atomic((samples / "step_00000050.png").string(), "stale grid");
  // Nor its TensorBoard events (TensorBoard would draw them as this run's);
  // other files in tb/ are the user's.
  const fs::path tb = fs::path(d.run_dir) / "tb";
  fs::create_directories(tb);
  const fs::path stale_events = tb / "events.out.tfevents.1700000000.host";
  io::write_file_atomic(stale_events.string(), "stale events");
  io::write_file_atomic((tb / "notes.txt").string(), "mine");
  d.steps = 2;
  run_training(d, quiet_options());
  CHECK(logged_steps(fs::path(d.run_dir) / "metrics.csv") == std::vector<int64_t>{1, 2});
  CHECK_FALSE(fs::exists(stale_events));
  CHECK(fs::exists(tb / "notes.txt"));
  CHECK_FALSE(fs::exists(samples / "step_00000050.png"));
  CHECK(fs::exists(samples / "step_00000002.png"));  // this run's last grid
  // With a checkpoint there, it is a run: a new one is refused as before.
  REQUIRE_THROWS_WITH(run_training(d, quiet_options()), Catch::Contains("a run already exists there"));
}

TEST_CASE("run directories: another program's config.json, one process at a time, fewer steps, a failed start",
          "[reliability][run]") {
  TempDir root;
  // A directory holding some other program's config.json is refused, its
  // files untouched (it used to count as a run that never checkpointed).
  TrainConfig c = folder_config(root.path / "a");
  fs::create_directories(c.run_dir);
  const fs::path foreign = fs::path(c.run_dir) / "config.json", csv = fs::path(c.run_dir) / "metrics.csv";
  io::write_file_atomic(foreign.string(), R"({"name": "my web app"})");
  io::write_file_atomic(csv.string(), "a,b\n");
  REQUIRE_THROWS_WITH(run_training(c, quiet_options()),
                      Catch::Contains("cannot read as a run's") && Catch::Contains("name: unknown key"));
  CHECK(slurp(foreign) == R"({"name": "my web app"})");
  CHECK(slurp(csv) == "a,b\n");

  // So is a directory of the user's own files with no config.json at all:
  // a start would overwrite its metrics.csv and delete its step_*.png.
  TrainConfig own = folder_config(root.path / "own");
  fs::create_directories(fs::path(own.run_dir) / "samples");
  const fs::path own_csv = fs::path(own.run_dir) / "metrics.csv";
  const fs::path own_png = fs::path(own.run_dir) / "samples" / "step_00000007.png";
  io::write_file_atomic(own_csv.string(), "my results\n");
  io::write_file_atomic(own_png.string(), "png");
  REQUIRE_THROWS_WITH(run_training(own, quiet_options()),
                      Catch::Contains("holds 'metrics.csv', 'samples' but no config.json") &&
                          Catch::Contains("choose an empty or new directory"));
  CHECK(slurp(own_csv) == "my results\n");
  CHECK(slurp(own_png) == "png");
  CHECK_FALSE(fs::exists(fs::path(own.run_dir) / ".lock"));
  // An empty directory the user made is used.
  TrainConfig empty = folder_config(root.path / "empty");
  empty.steps = 1;
  fs::create_directories(empty.run_dir);
  CHECK(run_training(empty, quiet_options()).stop_signal == 0);
  CHECK(fs::exists(fs::path(empty.run_dir) / "config.json"));

  // One process per run directory: a held lock refuses a start and a second lock.
  TrainConfig d = folder_config(root.path / "b");
  d.steps = 2;
  fs::create_directories(d.run_dir);
  {
    RunDirLock held(d.run_dir);
    REQUIRE_THROWS_WITH(run_training(d, quiet_options()), Catch::Contains("is in use by another sagan-train process"));
    CHECK_FALSE(fs::exists(fs::path(d.run_dir) / "config.json"));
    REQUIRE_THROWS_WITH(RunDirLock(d.run_dir), Catch::Contains("in use"));
  }
  const RunResult r = run_training(d, quiet_options());  // released with its holder
  CHECK(r.run_dir == d.run_dir);
  CHECK(r.stop_signal == 0);

  // Checkpoints make a run even when its config.json is gone: not reused.
  TrainConfig nc = folder_config(root.path / "nc");
  nc.steps = 2;
  run_training(nc, quiet_options());
  fs::remove(fs::path(nc.run_dir) / "config.json");
  const std::string kept_ckpt = latest_checkpoint(nc.run_dir);
  REQUIRE_THROWS_WITH(run_training(nc, quiet_options()), Catch::Contains("a run already exists there"));
  CHECK(latest_checkpoint(nc.run_dir) == kept_ckpt);

  // --resume with fewer steps than the run has done is refused, its config kept.
  REQUIRE_THROWS_WITH(run_training(more_steps(1), resume_options(d.run_dir)),
                      Catch::Contains("--steps 1: the run in") && Catch::Contains("already at step 2"));
  TrainConfig kept;
  read_config_file((fs::path(d.run_dir) / "config.json").string(), kept, nullptr);
  CHECK(kept.steps == 2);
  // Refused too when it would fall back past a damaged newest checkpoint,
  // which is then left as it was (not renamed .unreadable): the refused
  // command changes nothing.
  const std::string torn = checkpoint_path(d.run_dir, 3);
  io::write_file_atomic(torn, "torn");
  REQUIRE_THROWS_WITH(run_training(more_steps(1), resume_options(d.run_dir)), Catch::Contains("already at step 2"));
  CHECK(slurp(torn) == "torn");
  CHECK_FALSE(fs::exists(torn + ".unreadable"));
  fs::remove(torn);

  // A resume on data of other classes is refused once, as such: not each
  // checkpoint in turn as damaged.
  TrainConfig other = folder_config(root.path / "three");
  fs::create_directories(fs::path(other.data_path) / "class2");
  fs::copy_file(fs::path(other.data_path) / "class0" / "0.png", fs::path(other.data_path) / "class2" / "0.png");
  RunOptions on_other = resume_options(d.run_dir);
  TrainConfig with_data = more_steps(4);
  with_data.data_path = other.data_path;
  on_other.given.from_flag("data_path", "--data");
  REQUIRE_THROWS_WITH(run_training(with_data, on_other),
                      Catch::Contains("--resume " + d.run_dir + ": the run's model has 2 classes and --data " +
                                      other.data_path + " gives 3"));
  CHECK(list_checkpoints(d.run_dir).size() == 1);
  // The run keeps its class names in label order; a resume on class folders
  // renamed (same count, labels swapped) is refused.
  CHECK(slurp(fs::path(d.run_dir) / "classes.txt") == "class0\nclass1\n");
  fs::rename(fs::path(d.data_path) / "class0", fs::path(d.data_path) / "class2");
  REQUIRE_THROWS_WITH(run_training(more_steps(4), resume_options(d.run_dir)),
                      Catch::Contains("label 0 is class 'class0' in this run") && Catch::Contains("and 'class1' in") &&
                          Catch::Contains("class folders renamed"));
  fs::rename(fs::path(d.data_path) / "class2", fs::path(d.data_path) / "class0");

  // A start that fails before writing anything removes the directory it made,
  // and leaves one the user made.
  TrainConfig e = folder_config(root.path / "c");
  e.data_path = (root.path / "no_such_data").string();
  REQUIRE_THROWS(run_training(e, quiet_options()));
  CHECK_FALSE(fs::exists(e.run_dir));
  TrainConfig bad = folder_config(root.path / "c");  // bad settings: refused before any directory is made
  bad.batch_size = 0;
  REQUIRE_THROWS_WITH(run_training(bad, quiet_options()), Catch::Contains("must be positive, got 0"));
  CHECK_FALSE(fs::exists(bad.run_dir));
  TrainConfig no_weights = folder_config(root.path / "c");  // FD weights not there: before any directory too
  no_weights.fd_every = no_weights.log_every;
  no_weights.fd_weights = (root.path / "no_such.safetensors").string();
  REQUIRE_THROWS_WITH(run_training(no_weights, quiet_options()),
                      Catch::Contains("--fd-weights") && Catch::Contains("no_such.safetensors: no such file"));
  CHECK_FALSE(fs::exists(no_weights.run_dir));
  // Weights that exist but are no feature net's fail after config.json,
  // metrics.csv and TensorBoard's file were written, still before the first
  // step: the directory this start made goes with them.
  TrainConfig bad_weights = no_weights;
  bad_weights.fd_features = "inception";
  bad_weights.fd_weights = (root.path / "not_weights.safetensors").string();
  io::write_file_atomic(bad_weights.fd_weights, "not a safetensors file");
  REQUIRE_THROWS_WITH(run_training(bad_weights, quiet_options()), Catch::Contains("not_weights.safetensors"));
  CHECK_FALSE(fs::exists(bad_weights.run_dir));
  fs::create_directories(e.run_dir);
  REQUIRE_THROWS(run_training(e, quiet_options()));
  CHECK(fs::exists(e.run_dir));
}

TEST_CASE("an output that cannot be written stops the run, saying where it stands and how to continue",
          "[reliability][run]") {
  TempDir root;
  TrainConfig c = folder_config(root.path);
  c.checkpoint_every = 2;
  c.sample_every = 2;
  c.steps = 2;
  run_training(c, quiet_options());
  // Step 4's grid cannot be written (a folder stands at its path, as a full
  // disk would fail it); its checkpoint comes first, so the grid costs no
  // step, and the error names the grid, then the run and the resume.
  const fs::path grid4 = fs::path(c.run_dir) / "samples" / "step_00000004.png";
  fs::create_directories(grid4);
  const std::string newest = checkpoint_path(c.run_dir, 4);
  REQUIRE_THROWS_WITH(run_training(more_steps(6), resume_options(c.run_dir)),
                      Catch::Contains("step_00000004.png") &&
                          Catch::Contains("sagan-train: run dir " + c.run_dir + "; its newest checkpoint is " +
                                          newest + "; fix the cause, then: sagan-train --resume " + c.run_dir));
  CHECK(latest_checkpoint(c.run_dir) == newest);
  // Once fixed, the resume writes the grid that was due at its step.
  fs::remove(grid4);
  run_training(more_steps(4), resume_options(c.run_dir));
  CHECK(fs::is_regular_file(grid4));
}

TEST_CASE("metrics rows past a step are dropped atomically; a cut-off last line with them", "[reliability][run][csv]") {
  TempDir dir;
  const std::string csv = dir / "metrics.csv";
  io::write_file_atomic(csv, "step,loss\n1,0.5\n2,0.25\n3,0.125\n4,0.0625\n5,0.0");  // 5 cut short
  CHECK(drop_metrics_rows_after(csv, 2) == 2);
  CHECK(slurp(csv) == "step,loss\n1,0.5\n2,0.25\n");
  CHECK(drop_metrics_rows_after(csv, 2) == 0);
  CHECK(drop_metrics_rows_after(dir / "missing.csv", 0) == 0);
  CHECK_FALSE(fs::exists(dir / "missing.csv"));
  io::write_file_atomic(csv, "step,loss\nx,1\n");
  REQUIRE_THROWS_WITH(drop_metrics_rows_after(csv, 0), Catch::StartsWith(csv + ": a row whose first column"));
}

TEST_CASE("sample grids of steps past the start are removed, nothing else", "[reliability][run]") {
  TempDir dir;
  CHECK(drop_samples_after(dir.path.string(), 0) == 0);  // no samples folder
  const fs::path samples = dir / "samples";
  fs::create_directories(samples);
  for (const char* name : {"step_00000002.png", "step_00000003.png", "step_123456789.png", "step_00000003.png.txt",
                           "step_x.png", "step_.png", "grid.png", "step_-5.png"})
    io::write_file_atomic((samples / name).string(), "x");
  fs::create_directories(samples / "step_00000009.png");  // a directory of that name: not a grid
  CHECK(drop_samples_after(dir.path.string(), 2) == 2);
  CHECK(fs::exists(samples / "step_00000002.png"));
  CHECK_FALSE(fs::exists(samples / "step_00000003.png"));
  CHECK_FALSE(fs::exists(samples / "step_123456789.png"));
  for (const char* kept :
       {"step_00000003.png.txt", "step_x.png", "step_.png", "grid.png", "step_-5.png", "step_00000009.png"})
    CHECK(fs::exists(samples / kept));
  CHECK(drop_samples_after(dir.path.string(), 2) == 0);
}

TEST_CASE("resume leftovers: temporaries removed, rows after the checkpoint dropped, TensorBoard told to purge",
          "[reliability][run][resume][long]") {
  TempDir root;
  TrainConfig c = folder_config(root.path);
  c.steps = 4;
  run_training(c, quiet_options());
  const fs::path run = c.run_dir;
  // A crash after step 4's rows but before its checkpoint, and during a write.
  fs::remove(checkpoint_path(c.run_dir, 4));
  io::write_file_atomic((run / "checkpoints" / ".step_00000004.safetensors.tmp.Ab12Cd").string(), "partial");
  io::write_file_atomic((run / "checkpoints" / "notes.txt").string(), "not ours");
  io::write_file_atomic((run / "checkpoints" / ".step_x.safetensors.tmp.1").string(), "not ours either");
  REQUIRE(logged_steps(run / "metrics.csv") == std::vector<int64_t>{1, 2, 3, 4});

  // Resumed with --on-nan skip, which adds the skipped_steps column.
  TrainConfig more = more_steps(4);
  more.on_nan = "skip";
  RunOptions o = resume_options(c.run_dir);
  o.given.from_flag("on_nan", "--on-nan");
  run_training(more, o);
  CHECK(slurp(run / "metrics.csv").find(",skipped_steps") != std::string::npos);
  CHECK_FALSE(fs::exists(run / "checkpoints" / ".step_00000004.safetensors.tmp.Ab12Cd"));
  CHECK(fs::exists(run / "checkpoints" / "notes.txt"));
  CHECK(fs::exists(run / "checkpoints" / ".step_x.safetensors.tmp.1"));
  CHECK(logged_steps(run / "metrics.csv") == std::vector<int64_t>{1, 2, 3, 4});  // each once
  // The resumed run's event file starts with a SessionLog START at step 3:
  // TensorBoard drops the first file's steps 3 and 4.
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(run / "tb")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 2);
  std::vector<testing::Event> ev = testing::read_events(files[1].string());
  REQUIRE(ev.size() >= 2);
  CHECK(ev[1].session_status == 1);
  CHECK(ev[1].step == 3);

  // Turned off again on the next resume: the column stays, blank (it used to
  // fail at the first row, after config.json had taken the change, so no
  // resume worked after), and a plain resume after that goes on.
  TrainConfig back = more_steps(6);
  back.on_nan = "stop";
  RunOptions ob = resume_options(c.run_dir);
  ob.given.from_flag("on_nan", "--on-nan");
  run_training(back, ob);
  run_training(more_steps(8), resume_options(c.run_dir));
  CHECK(logged_steps(run / "metrics.csv") == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(slurp(run / "metrics.csv").find(",skipped_steps") != std::string::npos);
}

TEST_CASE("resume falls back to the previous checkpoint when the newest is corrupt or not finite",
          "[reliability][run][resume]") {
  TempDir root;
  TrainConfig c = folder_config(root.path);
  c.steps = 4;
  run_training(c, quiet_options());
  const std::string newest = checkpoint_path(c.run_dir, 4), previous = checkpoint_path(c.run_dir, 2);
  {
    std::string bytes = slurp(newest);
    bytes.resize(bytes.size() / 2);  // torn (not by our writer, which is atomic)
    io::write_file_atomic(newest, bytes);
  }
  std::vector<std::string> warnings;
  Trainer t(c, make_dataset(c));
  CHECK(restore_newest_valid(
            c.run_dir, [&](const std::string& p) { t.load_checkpoint(p); },
            [&](const std::string& w) { warnings.push_back(w); }) == previous);
  CHECK(t.step_count() == 2);
  REQUIRE(warnings.size() == 2);
  CHECK_THAT(warnings[0], Catch::StartsWith(newest + " cannot be resumed from") && Catch::EndsWith(previous));
  // The torn file is kept under another name, out of rotation's count (which
  // would have deleted the good one with --keep-checkpoints 1) and of what
  // sagan-sample takes for the newest.
  CHECK_THAT(warnings[1], Catch::StartsWith("renamed " + newest + " to " + newest + ".unreadable"));
  CHECK(fs::exists(newest + ".unreadable"));
  CHECK(list_checkpoints(c.run_dir) == std::vector<std::string>{previous});
  // sagan-train --resume does the same and trains on to the end.
  run_training(more_steps(4), resume_options(c.run_dir));
  CHECK(logged_steps(fs::path(c.run_dir) / "metrics.csv") == std::vector<int64_t>{1, 2, 3, 4});
  CHECK_NOTHROW(open_checkpoint(newest));  // rewritten by the resumed run
  // When none restores, the error lists each.
  for (const std::string& p : list_checkpoints(c.run_dir)) io::write_file_atomic(p, "junk");
  REQUIRE_THROWS_WITH(run_training(more_steps(6), resume_options(c.run_dir)),
                      Catch::Contains("none of its 2 checkpoint(s) can be resumed from") && Catch::Contains(newest) &&
                          Catch::Contains(previous));
}
