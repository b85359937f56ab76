// sagan-train's data options on a whole run: --channels auto on a folder of
// grayscale images trains a 1-channel model and config.json records "1";
// --resize pad reaches the loader, the FD monitor's real images and the
// config; a run directory from before --channels resumes with its channels.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/io/image.h"
#include "core/rng.h"
#include "models/quality/metrics.h"
#include "models/train_run.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using sagan::testing::TempDir;
namespace fs = std::filesystem;

namespace {
// Two classes of 28x28 grayscale PNGs (Fashion-MNIST-sized) under root/gray.
std::string gray_folder(const fs::path& root) {
  for (int k = 0; k < 2; ++k) {
    fs::path dir = root / "gray" / ("c" + std::to_string(k));
    fs::create_directories(dir);
    for (int i = 0; i < 6; ++i) {
      io::Image img(28, 28, 1);
      Rng g(static_cast<uint64_t>(k * 100 + i + 3));
      for (auto& p : img.pixels) p = static_cast<uint8_t>(g.below(256));
      io::write_png((dir / (std::to_string(i) + ".png")).string(), img);
    }
  }
  return (root / "gray").string();
}

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

RunOptions quiet() {
  RunOptions o;
  o.progress = false;
  return o;
}
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
  run_training(c, quiet());
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
  run_training(rgb, quiet());
  CHECK(read_json(root.path / "rgb" / "config.json")["model"]["image_channels"] == 3);
}

TEST_CASE("a run from before --channels resumes with the channels its model has",
          "[trainer][run][data_options][long]") {
  TempDir root;
  const std::string data = gray_folder(root.path);
  // Before --channels, a folder was always read as RGB.
  TrainConfig c = tiny_folder_config(data, root.path / "old");
  c.channels = "3";
  run_training(c, quiet());
  const fs::path config = root.path / "old" / "config.json";
  nlohmann::json j = read_json(config);
  j.erase("channels");
  j.erase("resize");
  io::write_file_atomic(config.string(), j.dump(2));

  TrainConfig more;
  more.steps = 3;
  RunOptions r = quiet();
  r.resume_dir = c.run_dir;
  r.given.from_flag("steps", "--steps");
  run_training(more, r);  // auto would read the folder as gray and refuse the RGB checkpoint
  const nlohmann::json after = read_json(config);
  CHECK(after["channels"] == "3");
  CHECK(after["resize"] == "bilinear");  // the old default
  CHECK(latest_checkpoint(c.run_dir).find("step_00000003") != std::string::npos);
}
