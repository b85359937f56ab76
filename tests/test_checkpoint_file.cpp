// The checkpoint module (models/checkpoint_file.h): a run directory's files
// newest first and their rotation, the format check, the generator weights a
// tool asks for, and networks loaded from a trainer's checkpoint.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sagan/core/io/safetensors.h"
#include "sagan/core/warning.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"
#include "sagan/models/trainer.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::TempDir;
using sagan::testing::TinyDataset;
namespace fs = std::filesystem;

namespace {
TrainConfig checkpoint_config() {
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.batch_size = 4;
  c.ema_start = 0;
  c.ema_decay = 0.5;
  c.device = "cpu";
  c.seed = 3;
  return c;
}

void touch(const fs::path& p) { std::ofstream(p) << "x"; }
}  // namespace

TEST_CASE("a run's checkpoints: named by step, listed newest first, rotated", "[checkpoint]") {
  TempDir dir;
  const std::string run = dir.path.string();
  CHECK(list_checkpoints(run).empty());
  CHECK(latest_checkpoint(run).empty());
  fs::create_directories(dir.path / "checkpoints");
  CHECK(checkpoint_path(run, 1500) == (dir.path / "checkpoints" / "step_00001500.safetensors").string());
  for (int64_t s : {500, 1500, 1000, 20}) touch(checkpoint_path(run, s));
  touch(dir.path / "checkpoints" / "notes.txt");
  touch(dir.path / "checkpoints" / "other.safetensors");
  std::vector<std::string> want = {checkpoint_path(run, 1500), checkpoint_path(run, 1000), checkpoint_path(run, 500),
                                   checkpoint_path(run, 20)};
  CHECK(list_checkpoints(run) == want);
  CHECK(latest_checkpoint(run) == want[0]);
  rotate_checkpoints(run, 2);
  CHECK(list_checkpoints(run) == std::vector<std::string>{want[0], want[1]});
  CHECK(fs::exists(dir.path / "checkpoints" / "notes.txt"));  // only checkpoints are rotated
  CHECK(fs::exists(dir.path / "checkpoints" / "other.safetensors"));

  // Copies a user keeps beside them under other names are not checkpoints:
  // neither the newest (a resume would go back to their step) nor rotated.
  for (const char* kept : {"step_best.safetensors", "step_00001500_good.safetensors", "step_.safetensors",
                           "step_00002000.safetensors.unreadable", "step_-0000300.safetensors"})
    touch(dir.path / "checkpoints" / kept);
  CHECK(list_checkpoints(run) == std::vector<std::string>{want[0], want[1]});
  rotate_checkpoints(run, 1);
  CHECK(list_checkpoints(run) == std::vector<std::string>{want[0]});
  CHECK(fs::exists(dir.path / "checkpoints" / "step_best.safetensors"));
  CHECK(fs::exists(dir.path / "checkpoints" / "step_00001500_good.safetensors"));

  // Newest by step, not by name: past 8 digits the name order is not the step order.
  touch(checkpoint_path(run, 99999999));
  touch(checkpoint_path(run, 100000000));
  CHECK(checkpoint_path(run, 100000000) == (dir.path / "checkpoints" / "step_100000000.safetensors").string());
  CHECK(latest_checkpoint(run) == checkpoint_path(run, 100000000));
  rotate_checkpoints(run, 2);
  CHECK(list_checkpoints(run) ==
        std::vector<std::string>{checkpoint_path(run, 100000000), checkpoint_path(run, 99999999)});
}

TEST_CASE("checkpoint sections and the generator weights a tool asks for", "[checkpoint]") {
  CHECK(std::string(section_prefix(generator_section("ema"))) == "G_ema.");
  CHECK(std::string(section_prefix(generator_section("g"))) == "G.");
  CHECK(std::string(section_prefix(CheckpointSection::D)) == "D.");
  CHECK(std::string(section_prefix(CheckpointSection::OptG)) == "opt_G.");
  CHECK(std::string(section_prefix(CheckpointSection::OptD)) == "opt_D.");
  REQUIRE_THROWS_WITH(generator_section("G_ema"), Catch::Contains("--weights: 'G_ema'"));
}

TEST_CASE("tools load the networks a trainer saved; other files are refused by name", "[checkpoint][trainer]") {
  auto ds = std::make_shared<TinyDataset>(8);
  TempDir dir;
  const std::string run = dir.path.string();
  Trainer t(checkpoint_config(), ds);
  t.step();
  t.step();
  fs::create_directories(dir.path / "checkpoints");
  t.save_checkpoint(checkpoint_path(run, t.step_count()));

  CheckpointFile c = open_checkpoint(run);  // a run directory: its newest
  CHECK(c.path == checkpoint_path(run, 2));
  CHECK(c.step == "2");
  CHECK(c.config.model.ch == 4);
  CHECK(c.config.model.num_classes == 3);  // resolved from the data set

  Rng init(0);
  SaganGenerator ema(c.config.model, init), raw(c.config.model, init);
  load_generator(ema, c, "ema");
  load_generator(raw, c, "g");
  auto same = [](const nn::Module& a, const nn::Module& b) {
    for (auto& [n, v] : a.state())
      if (v.to_vector() != b.tensor(n).to_vector()) return false;
    return true;
  };
  CHECK(same(ema, t.ema_generator()));
  CHECK(same(raw, t.generator()));
  CHECK_FALSE(same(ema, raw));  // EMA (decay 0.5) differs from G after two steps
  SaganDiscriminator d(c.config.model, init);
  load_discriminator(d, c);
  CHECK(same(d, t.discriminator()));
  // A loaded model may be flat: the values go into its buffer.
  SaganGenerator flat(c.config.model, init);
  flat.flatten_parameters(false);
  load_generator(flat, c, "ema");
  CHECK(same(flat, t.ema_generator()));

  // A safetensors file that is not a sagan-train checkpoint.
  std::string other = (dir.path / "plain.safetensors").string();
  io::save_safetensors(other, {{"w", Tensor::zeros({2})}}, {{"config", "{}"}});
  REQUIRE_THROWS_WITH(open_checkpoint(other), Catch::Contains("plain.safetensors: not a sagan-train checkpoint") &&
                                                  Catch::Contains("'format' is missing"));
  REQUIRE_THROWS_WITH(t.load_checkpoint(other), Catch::Contains("plain.safetensors: not a sagan-train checkpoint"));
  REQUIRE_THROWS_WITH(open_checkpoint((dir.path / "nope").string()), Catch::Contains("nope: no such checkpoint"));
  // The run's checkpoints/ folder in place of the run: the message names the run.
  REQUIRE_THROWS_WITH(open_checkpoint((dir.path / "checkpoints/").string()),
                      Catch::Contains("checkpoints/: a run's checkpoints folder; give the run directory " +
                                      fs::canonical(dir.path).string()));

  // Counters out of range are refused by name (a step of -7 used to train
  // from -7 and drop every metrics row "after" it), as is a step that
  // disagrees with the file's metadata.
  auto with_tensor = [&](const std::string& name, const Tensor& value) {
    io::SafetensorsFile f = io::load_safetensors(checkpoint_path(run, 2));
    NamedTensors all;
    for (const auto& [n, v] : f.tensors) all.emplace_back(n, n == name ? value : v);
    const std::string path = (dir.path / "edited.safetensors").string();
    io::save_safetensors(path, all, f.metadata);
    return path;
  };
  const Tensor minus7 = Tensor::from_vector(std::vector<int64_t>{-7}, {1});
  REQUIRE_THROWS_WITH(t.load_checkpoint(with_tensor("trainer.step", minus7)),
                      Catch::Contains("edited.safetensors") && Catch::Contains("'trainer.step' holds -7"));
  REQUIRE_THROWS_WITH(t.load_checkpoint(with_tensor("trainer.step", Tensor::from_vector(std::vector<int64_t>{5}, {1}))),
                      Catch::Contains("edited.safetensors") && Catch::Contains("metadata says step 2"));
  // Every reader, not only --resume: the tools print the metadata's step.
  REQUIRE_THROWS_WITH(open_checkpoint(with_tensor("trainer.step", Tensor::from_vector(std::vector<int64_t>{5}, {1}))),
                      Catch::Contains("'trainer.step' holds 5, but the file's metadata says step 2"));
  REQUIRE_THROWS_WITH(
      t.load_checkpoint(with_tensor("trainer.loader", Tensor::from_vector(std::vector<int64_t>{0, -1, 3}, {3}))),
      Catch::Contains("edited.safetensors") && Catch::Contains("'trainer.loader' holds -1"));
  REQUIRE_THROWS_WITH(t.load_checkpoint(with_tensor("opt_G.step", Tensor::scalar(-5.0))),
                      Catch::Contains("edited.safetensors") && Catch::Contains("'step' holds -5"));
  // A zeroed spectral-norm vector is finite, so the NaN check passes it, but
  // sigma = u^T W v = 0 would give infinite weights: loading names the layer.
  {
    std::string u_name;
    for (const auto& [n, v] : io::load_safetensors(checkpoint_path(run, 2)).tensors)
      if (n.starts_with("G_ema.") && n.ends_with(".weight_u")) u_name = n;
    REQUIRE(!u_name.empty());
    const std::string path = with_tensor(u_name, Tensor::zeros(c.file.at(u_name).shape()));
    const std::string layer = u_name.substr(std::strlen("G_ema."), u_name.size() - std::strlen("G_ema.weight_u"));
    SaganGenerator g(c.config.model, init);
    REQUIRE_THROWS_WITH(load_generator(g, open_checkpoint(path), "ema"),
                        Catch::Contains("edited.safetensors (G_ema.*): " + layer + "weight_u and weight_v") &&
                            Catch::Contains("sigma = u^T W v = 0"));
    load_generator(g, open_checkpoint(path), "g");  // the raw generator's own vectors are intact
  }
  // A step in the metadata that is not a count (the tools print it, exports carry it).
  {
    io::SafetensorsFile f = io::load_safetensors(checkpoint_path(run, 2));
    f.metadata["step"] = "abc";
    NamedTensors all(f.tensors.begin(), f.tensors.end());
    const std::string path = (dir.path / "badstep.safetensors").string();
    io::save_safetensors(path, all, f.metadata);
    REQUIRE_THROWS_WITH(open_checkpoint(path), Catch::Contains("badstep.safetensors: metadata 'step' is 'abc'"));
  }
  // A model in the config metadata that breaks the settings' rules: refused
  // naming the file, not later by the network's bare rule.
  {
    io::SafetensorsFile f = io::load_safetensors(checkpoint_path(run, 2));
    TrainConfig edited = TrainConfig::from_json(f.metadata.at("config"), "config");
    edited.model.resolution = 48;
    f.metadata["config"] = edited.to_json();
    NamedTensors all(f.tensors.begin(), f.tensors.end());
    const std::string path = (dir.path / "badmodel.safetensors").string();
    io::save_safetensors(path, all, f.metadata);
    REQUIRE_THROWS_WITH(open_checkpoint(path),
                        Catch::Contains("badmodel.safetensors (config metadata): model.resolution") &&
                            Catch::Contains("damaged or not sagan-train's"));
  }
  // A config without its model: refused by that, not by the first tensor's shape.
  {
    io::SafetensorsFile f = io::load_safetensors(checkpoint_path(run, 2));
    nlohmann::json cfg = nlohmann::json::parse(f.metadata.at("config"));
    cfg.erase("model");
    f.metadata["config"] = cfg.dump();
    NamedTensors all(f.tensors.begin(), f.tensors.end());
    const std::string path = (dir.path / "nomodel.safetensors").string();
    io::save_safetensors(path, all, f.metadata);
    REQUIRE_THROWS_WITH(open_checkpoint(path), Catch::Contains("nomodel.safetensors (config metadata): no 'model' "
                                                               "settings: the file is damaged or not sagan-train's"));
    // An empty model too: defaults would stand in for every setting.
    cfg["model"] = nlohmann::json::object();
    f.metadata["config"] = cfg.dump();
    io::save_safetensors(path, NamedTensors(f.tensors.begin(), f.tensors.end()), f.metadata);
    REQUIRE_THROWS_WITH(open_checkpoint(path),
                        Catch::Contains("nomodel.safetensors (config metadata): model.resolution missing"));
  }
  // A model with another class count (another --data) is refused by that
  // difference, not by the first shape that fails to load.
  TrainConfig uc = checkpoint_config();
  uc.unconditional = true;
  Trainer u(uc, ds);
  REQUIRE_THROWS_WITH(u.load_checkpoint(checkpoint_path(run, 2)),
                      Catch::Contains("has 3 classes, the data set gives 0"));
  fs::create_directories(dir.path / "empty_run");
  REQUIRE_THROWS_WITH(open_checkpoint((dir.path / "empty_run").string()),
                      Catch::Contains("empty_run: a directory without checkpoints"));

  // A run whose newest checkpoint is cut short: the error names it and an
  // older one to use instead.
  t.step();
  t.save_checkpoint(checkpoint_path(run, 3));
  fs::resize_file(checkpoint_path(run, 3), 100);
  REQUIRE_THROWS_WITH(open_checkpoint(run),
                      Catch::Contains(checkpoint_path(run, 3)) &&
                          Catch::Contains("name an older one to use it instead, e.g. " + checkpoint_path(run, 2)));
  CHECK(open_checkpoint(checkpoint_path(run, 2)).step == "2");
}

TEST_CASE("a checkpoint records the data set's size; a resume on another size warns that it is not exact",
          "[checkpoint][trainer][resume]") {
  TempDir dir;
  Trainer t(checkpoint_config(), std::make_shared<TinyDataset>(10));
  t.step();
  const std::string path = (dir.path / "c.safetensors").string();
  t.save_checkpoint(path);
  CHECK(io::load_safetensors(path).metadata.at("data_size") == "10");

  // Warnings collected while in scope (put back on the way out, thrown or not).
  std::vector<std::string> warnings;
  struct Capture {
    WarningHandler before;
    explicit Capture(std::vector<std::string>& to)
        : before(set_warning_handler([&to](const std::string& w) { to.push_back(w); })) {}
    ~Capture() { set_warning_handler(before); }
  };
  Trainer same(checkpoint_config(), std::make_shared<TinyDataset>(10));
  Trainer grown(checkpoint_config(), std::make_shared<TinyDataset>(12));
  {
    Capture capture(warnings);
    same.load_checkpoint(path);
    CHECK(warnings.empty());
    grown.load_checkpoint(path);  // it still resumes
  }
  CHECK(grown.step_count() == 1);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("c.safetensors: the data set had 10 examples at step 1, and tiny has 12 "
                                          "now") &&
                              Catch::Contains("not an exact resume"));

  // Fewer examples than the checkpoint's position: not a damaged checkpoint;
  // the run goes on from the next epoch's start.
  auto loader_of = [](const Trainer& tr) {  // epoch, index, seed
    for (const auto& [name, v] : tr.checkpoint_tensors())
      if (name == "trainer.loader") return v.to_int_vector();
    return std::vector<int64_t>{};
  };
  const int64_t epoch = loader_of(t).at(0);
  REQUIRE(loader_of(t).at(1) == 4);
  Trainer shrunk(checkpoint_config(), std::make_shared<TinyDataset>(6));
  {
    Capture capture(warnings);
    shrunk.load_checkpoint(path);
  }
  REQUIRE(warnings.size() == 2);
  CHECK_THAT(warnings[1], Catch::Contains("had 10 examples at step 1, and tiny has 6 now") &&
                              Catch::Contains(fmt::format("starts epoch {} over them", epoch + 1)));
  CHECK(loader_of(shrunk).at(0) == epoch + 1);
  CHECK(loader_of(shrunk).at(1) == 0);
  CHECK(shrunk.step().step == 2);

  // A value that is not a count: damaged.
  io::SafetensorsFile f = io::load_safetensors(path);
  f.metadata["data_size"] = "-3";
  const std::string bad = (dir.path / "bad.safetensors").string();
  io::save_safetensors(bad, NamedTensors(f.tensors.begin(), f.tensors.end()), f.metadata);
  REQUIRE_THROWS_WITH(same.load_checkpoint(bad), Catch::Contains("bad.safetensors: metadata 'data_size' is '-3'"));
  // Older checkpoints have none, and resume without a word.
  f.metadata.erase("data_size");
  io::save_safetensors(bad, NamedTensors(f.tensors.begin(), f.tensors.end()), f.metadata);
  {
    Capture capture(warnings);
    grown.load_checkpoint(bad);
  }
  CHECK(warnings.size() == 2);
  // ... unless their position lies beyond the data set's end.
  Trainer small(checkpoint_config(), std::make_shared<TinyDataset>(4));
  {
    Capture capture(warnings);
    small.load_checkpoint(bad);
  }
  REQUIRE(warnings.size() == 3);
  CHECK_THAT(warnings[2], Catch::Contains("tiny has 4 examples, too few for the checkpoint's position (example 4 of "
                                          "epoch 0)"));
  CHECK(loader_of(small).at(1) == 0);
}
