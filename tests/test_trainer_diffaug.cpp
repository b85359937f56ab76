// Trainer with --diffaug: DiffAugment changes what D sees (the losses) but
// not the latents and labels drawn (its own Rng), resumes bit for bit (its
// Rng is in the checkpoint), and checkpoints from before it still load.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "sagan/core/io/safetensors.h"
#include "sagan/models/trainer.h"
#include "tests/support/resume_run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::TempDir;
using sagan::testing::TinyDataset;

namespace {
// The shared tiny config with two D steps per G step, its own seed and the
// default step count.
TrainConfig tiny_config(const std::string& diffaug) {
  TrainConfig c = sagan::testing::tiny_config();
  c.steps = TrainConfig{}.steps;
  c.n_dis = 2;
  c.seed = 11;
  c.diffaug = diffaug;
  return c;
}

std::vector<int64_t> counters(const Trainer& t, const std::string& name) {
  for (auto& [k, v] : t.checkpoint_tensors())
    if (k == name) return v.to_int_vector();
  FAIL("no checkpoint tensor " << name);
  return {};
}
}  // namespace

TEST_CASE("trainer: --diffaug changes D's inputs, not the latents, labels or data drawn", "[trainer][diffaug]") {
  auto ds = std::make_shared<TinyDataset>(12);
  Trainer plain(tiny_config("none"), ds), aug(tiny_config("color,translation,cutout"), ds);
  for (int i = 0; i < 3; ++i) {
    StepStats a = plain.step(), b = aug.step();
    INFO("step " << i + 1);
    CHECK(std::isfinite(b.loss_d));
    CHECK(std::isfinite(b.loss_g));
    CHECK(a.loss_d != b.loss_d);
    CHECK(a.loss_g != b.loss_g);
  }
  // The same z / label draws and the same data position; only DiffAugment's stream moved.
  CHECK(counters(plain, "trainer.rng") == counters(aug, "trainer.rng"));
  CHECK(counters(plain, "trainer.loader") == counters(aug, "trainer.loader"));
  CHECK(counters(plain, "trainer.aug_rng")[1] == 0);
  const std::vector<int64_t> drawn = counters(aug, "trainer.aug_rng");
  CHECK(drawn[1] > 0);
  // Sampling (the EMA generator) draws nothing from it.
  aug.sample(Tensor::zeros({2, 8}), Tensor::from_vector(std::vector<int64_t>{0, 1}, {2}));
  CHECK(counters(aug, "trainer.aug_rng") == drawn);
}

TEST_CASE("trainer: --diffaug, a resumed trainer continues bit for bit", "[trainer][diffaug][resume][long]") {
  auto ds = std::make_shared<TinyDataset>(10);
  testing::check_same_logged_values(
      testing::run_straight_and_resumed(tiny_config("color,translation,cutout"), ds, 4, 2));
}

TEST_CASE("a checkpoint from before --diffaug loads, its augmentation stream fresh", "[trainer][diffaug][checkpoint]") {
  auto ds = std::make_shared<TinyDataset>(8);
  TempDir dir;
  const std::string path = dir / "old.safetensors";
  {
    Trainer t(tiny_config("none"), ds);
    t.step();
    io::SafetensorsFile f;
    for (auto& [k, v] : t.checkpoint_tensors())
      if (k != "trainer.aug_rng") f.tensors.emplace_back(k, v);
    io::save_safetensors(path, f.tensors,
                         {{"format", "sagan-checkpoint-1"}, {"step", "1"}, {"config", t.config().to_json()}});
  }
  // Resumed with DiffAugment switched on (--resume --diffaug is allowed).
  Trainer t(tiny_config("translation"), ds);
  t.load_checkpoint(path);
  CHECK(t.step_count() == 1);
  CHECK(counters(t, "trainer.aug_rng")[1] == 0);
  t.step();
  CHECK(counters(t, "trainer.aug_rng")[1] > 0);
}
