// sagan-train's data options on a whole run: --channels auto on a folder of
// grayscale images trains a 1-channel model and config.json records "1";
// --resize pad reaches the loader, the FD monitor's real images and the
// config; a run directory from before --channels resumes with its channels;
// a program's own data set (RunOptions::dataset) trains, resumes exactly and
// is refused where it cannot serve.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "sagan/core/io/image.h"
#include "sagan/core/rng.h"
#include "sagan/models/quality/metrics.h"
#include "sagan/models/train_run.h"
#include "tests/support/logged_losses.h"
#include "tests/support/run_options.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::quiet_options;
using sagan::testing::resume_options;
using sagan::testing::TempDir;
namespace fs = std::filesystem;

namespace {
// Two classes of 28x28 PNGs (Fashion-MNIST-sized) under root/<name>, of
// `channels` channels.
std::string png_folder(const fs::path& root, const std::string& name, int64_t channels) {
  for (int k = 0; k < 2; ++k) {
    fs::path dir = root / name / ("c" + std::to_string(k));
    fs::create_directories(dir);
    for (int i = 0; i < 6; ++i) {
      io::Image img(28, 28, channels);
      Rng g(static_cast<uint64_t>(k * 100 + i + 3));
      for (auto& p : img.pixels) p = static_cast<uint8_t>(g.below(256));
      io::write_png((dir / (std::to_string(i) + ".png")).string(), img);
    }
  }
  return (root / name).string();
}
std::string gray_folder(const fs::path& root) { return png_folder(root, "gray", 1); }

TrainConfig tiny_folder_config(const std::string& data, const fs::path& run) {
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.batch_size = 4;
  c.steps = 2;
  c.log_every = 1;
  c.sample_every = c.checkpoint_every = 2;
  c.device = "cpu";
  c.seed = 5;
  c.dataset = "folder";
  c.data_path = data;
  c.run_dir = run.string();
  return c;
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(sagan::testing::read_text(p.string())); }

}  // namespace

TEST_CASE(
    "folder data: --channels auto trains a grayscale folder in 1 channel; --resize pad reaches loader, FD and config",
    "[trainer][run][data_options][long]") {
  TempDir root;
  const std::string data = gray_folder(root.path);
  TrainConfig c = tiny_folder_config(data, root.path / "run");
  c.resize = "pad";
  c.fd_every = 2;
  c.fd_samples = 8;
  c.fd_features = "fmnist";
  run_training(c, quiet_options());
  const nlohmann::json cfg = read_json(root.path / "run" / "config.json");
  CHECK(cfg["channels"] == "1");  // auto, resolved
  CHECK(cfg["resize"] == "pad");
  CHECK(cfg["model"]["image_channels"] == 1);
  io::Image grid = io::read_image((root.path / "run" / "samples" / "step_00000002.png").string());
  CHECK(grid.channels == 1);
  // The FD's real images took the run's geometry (its description is the cache check).
  quality::StatsFile ref = quality::load_stats((root.path / "run" / "fd_reference.safetensors").string());
  CHECK_THAT(ref.metadata.at("source"), Catch::Contains("1x32x32 (pad up)"));

  // --channels 3 on the same folder: an RGB model.
  TrainConfig rgb = tiny_folder_config(data, root.path / "rgb");
  rgb.channels = "3";
  run_training(rgb, quiet_options());
  CHECK(read_json(root.path / "rgb" / "config.json")["model"]["image_channels"] == 3);
}

TEST_CASE("a run from before --channels resumes with the channels its model has",
          "[trainer][run][data_options][long]") {
  TempDir root;
  const std::string data = gray_folder(root.path);
  // Before --channels, a folder was always read as RGB.
  TrainConfig c = tiny_folder_config(data, root.path / "old");
  c.channels = "3";
  run_training(c, quiet_options());
  const fs::path config = root.path / "old" / "config.json";
  nlohmann::json j = read_json(config);
  j.erase("channels");
  j.erase("resize");
  io::write_file_atomic(config.string(), j.dump(2));

  TrainConfig more;
  more.steps = 3;
  const RunOptions r = resume_options(c.run_dir);
  run_training(more, r);  // auto would read the folder as gray and refuse the RGB checkpoint
  const nlohmann::json after = read_json(config);
  CHECK(after["channels"] == "3");
  CHECK(after["resize"] == "bilinear");  // the old default
  CHECK(latest_checkpoint(c.run_dir).find("step_00000003") != std::string::npos);
}

TEST_CASE("a program's own data set trains through run_training, resumes exactly, and is refused where it cannot serve",
          "[trainer][run][data_options][resume][long]") {
  TempDir root;
  std::vector<std::string> seen_data_paths;  // one per call of the factory
  RunOptions own = quiet_options();
  own.dataset = [&](const TrainConfig& cfg) {
    seen_data_paths.push_back(cfg.data_path);
    return std::make_shared<sagan::testing::TinyDataset>(10);  // 2 batches an epoch: the resume crosses epochs
  };
  TrainConfig c = sagan::testing::tiny_config();
  c.dataset = "folder";  // ignored: the program's data set takes its place
  c.data_path = "mine";  // kept, absolute, for the factory to read
  c.log_every = 1;
  c.sample_every = c.checkpoint_every = 2;
  const auto [straight, resumed] = sagan::testing::train_straight_and_resumed(c, own, root.path, 5, 2);
  CHECK(std::count(straight.begin(), straight.end(), '\n') == 5);
  CHECK(resumed == straight);
  // Called once a run; the resume's call got the run's settings
  // (config.json's data path), not the bare config handed to run_training.
  const std::string mine = (fs::current_path() / "mine").lexically_normal().string();
  CHECK(seen_data_paths == std::vector<std::string>{mine, mine, mine});
  const nlohmann::json cfg = read_json(root.path / "straight" / "config.json");
  CHECK(cfg["dataset"] == "custom");
  CHECK(cfg["channels"] == "1");  // the data set's, resolved
  CHECK(cfg["model"]["num_classes"] == 3);
  c.run_dir = (root.path / "split").string();
  TrainConfig more;

  // Resumed without the program's data set: refused, naming what is missing.
  const RunOptions bare = resume_options(c.run_dir);
  more.steps = 6;
  REQUIRE_THROWS_WITH(run_training(more, bare),
                      Catch::Contains("trained on a program's own data set") && Catch::Contains("RunOptions::dataset"));
  CHECK(latest_checkpoint(c.run_dir).find("step_00000005") != std::string::npos);

  // A run of a built-in data set refuses the program's.
  TrainConfig f = tiny_folder_config(gray_folder(root.path), root.path / "folder_run");
  run_training(f, quiet_options());
  RunOptions other = own;
  other.resume_dir = f.run_dir;
  other.given.from_flag("steps", "--steps");
  REQUIRE_THROWS_WITH(run_training(more, other), Catch::Contains("trained on the data set 'folder'"));

  // dataset "custom" without one: refused before a directory is made.
  TrainConfig none = sagan::testing::tiny_config();
  none.dataset = "custom";
  none.run_dir = (root.path / "none").string();
  REQUIRE_THROWS_WITH(run_training(none, quiet_options()),
                      Catch::Contains("TrainConfig.dataset (--dataset) custom: a program's own data set"));
  CHECK_FALSE(fs::exists(none.run_dir));

  // Channels other than the data set's, a factory that returns nothing or
  // throws: the start fails with the reason, and leaves no directory.
  TrainConfig rgb = sagan::testing::tiny_config();
  rgb.channels = "3";
  rgb.run_dir = (root.path / "rgb").string();
  REQUIRE_THROWS_WITH(run_training(rgb, own),
                      Catch::Contains("TrainConfig.channels (--channels) 3: the program's data set 'tiny' has 1"));
  CHECK_FALSE(fs::exists(rgb.run_dir));
  RunOptions empty = quiet_options();
  empty.dataset = [](const TrainConfig&) { return std::shared_ptr<data::Dataset>(); };
  TrainConfig e = sagan::testing::tiny_config();
  e.run_dir = (root.path / "empty").string();
  REQUIRE_THROWS_WITH(run_training(e, empty), Catch::Contains("factory returned none"));
  RunOptions failing = quiet_options();
  failing.dataset = [](const TrainConfig&) -> std::shared_ptr<data::Dataset> {
    throw Error("my_images.db: cannot open");
  };
  REQUIRE_THROWS_WITH(run_training(e, failing), Catch::Contains("my_images.db: cannot open"));
  CHECK_FALSE(fs::exists(e.run_dir));
}

namespace {
// Everything the process writes to stdout and stderr while `body` runs.
std::string output_of(const std::function<void()>& body) {
  sagan::testing::TempDir dir;
  const std::string path = (dir.path / "out.txt").string();
  std::fflush(stdout);
  std::fflush(stderr);
  const int out = ::dup(1), err = ::dup(2);
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE((out >= 0 && err >= 0 && file >= 0));
  ::dup2(file, 1);
  ::dup2(file, 2);
  ::close(file);
  auto restore = [&] {
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close(out);
    ::close(err);
  };
  try {
    body();
  } catch (...) {
    restore();
    throw;
  }
  restore();
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The tiny data set, which stops the run (SIGUSR1, as mpirun forwards and
// Slurm sends) when example `at` is read.
class StopsAtRead : public sagan::testing::TinyDataset {
 public:
  StopsAtRead(int64_t n, int64_t at) : TinyDataset(n), at_(at) {}
  data::Example get(int64_t i) const override {
    if (reads_.fetch_add(1) == at_) std::raise(SIGUSR1);
    return TinyDataset::get(i);
  }

 private:
  int64_t at_;
  mutable std::atomic<int64_t> reads_{0};
};
}  // namespace

TEST_CASE("a program's run names itself as the program does, and says how to resume its own data set",
          "[train_run][custom]") {
  TempDir root;
  TrainConfig c = sagan::testing::tiny_config();
  c.steps = 50;
  c.run_dir = (root.path / "run").string();
  RunOptions own;
  own.name = "faces-trainer";
  own.dataset = [](const TrainConfig&) { return std::make_shared<StopsAtRead>(16, 40); };
  RunResult r;
  const std::string out = output_of([&] { r = run_training(c, own); });
  CHECK(r.stop_signal == SIGUSR1);
  CHECK_THAT(out, Catch::Contains("\nfaces-trainer: stopping once the current step is done (a second signal quits at "
                                  "once)\n"));
  CHECK_THAT(out, Catch::Contains("faces-trainer: class-conditional SAGAN-32"));
  CHECK_THAT(out, Catch::Contains("faces-trainer: stopped; continue with: run_training with RunOptions::resume_dir = " +
                                  c.run_dir + " and the same RunOptions::dataset"));
  CHECK_THAT(out, !Catch::Contains("sagan-train"));
}

TEST_CASE("FD on a folder found to be RGB asks for Inception weights, naming the settings as they were given",
          "[trainer][run][data_options]") {
  TempDir root;
  // --channels auto: only the images tell that the features must be Inception's.
  TrainConfig c = tiny_folder_config(png_folder(root.path, "rgb", 3), root.path / "fd");
  c.fd_every = 2;
  c.log_every = 2;
  c.fd_samples = 8;
  RunOptions cli = quiet_options();
  cli.given = ConfigSources{};  // as sagan-train hands them over
  cli.given.from_flag("fd_every", "--fd-every");
  REQUIRE_THROWS_WITH(run_training(c, cli),
                      Catch::StartsWith("--fd-every: FD on folder uses Inception features: give --fd-weights FILE"));
  CHECK_FALSE(fs::exists(c.run_dir));
  REQUIRE_THROWS_WITH(run_training(c, quiet_options()),  // set in code
                      Catch::StartsWith("TrainConfig.fd_every (--fd-every): FD on folder uses Inception features: "
                                        "give TrainConfig.fd_weights (--fd-weights) FILE"));
}
