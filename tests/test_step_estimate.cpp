// The ETA before the first step (models/step_estimate.h): a positive time,
// taken on throwaway networks, so a run that prints it trains exactly as one
// that does not.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sagan/core/io/image.h"
#include "sagan/core/rng.h"
#include "sagan/models/step_estimate.h"
#include "sagan/models/train_run.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using sagan::testing::TempDir;
namespace fs = std::filesystem;

namespace {
TrainConfig estimate_config() {
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.model.num_classes = 3;
  c.model.image_channels = 1;
  c.batch_size = 4;
  c.n_dis = 2;
  c.diffaug = "translation";
  c.device = "cpu";
  return c;
}
}  // namespace

TEST_CASE("estimate_iteration_seconds times an iteration of the run's shape", "[trainer][eta][long]") {
  TrainConfig c = estimate_config();
  const double t = estimate_iteration_seconds(c, Device::cpu());
  CHECK(std::isfinite(t));
  CHECK(t > 0);
  c.model.num_classes = 0;  // unconditional: no labels
  CHECK(estimate_iteration_seconds(c, Device::cpu()) > 0);
}

TEST_CASE("a run that prints the ETA trains as one that does not", "[trainer][eta][run][long]") {
  TempDir root;
  for (int k = 0; k < 2; ++k) {
    fs::create_directories(root.path / "data" / std::to_string(k));
    for (int i = 0; i < 4; ++i) {
      io::Image img(32, 32, 1);
      Rng g(static_cast<uint64_t>(10 * k + i));
      for (auto& p : img.pixels) p = static_cast<uint8_t>(g.below(256));
      io::write_png((root.path / "data" / std::to_string(k) / (std::to_string(i) + ".png")).string(), img);
    }
  }
  TrainConfig c = estimate_config();
  c.dataset = "folder";
  c.data_path = (root.path / "data").string();
  c.steps = 2;
  c.log_every = 1;
  auto metrics = [&](bool progress, const std::string& name) {
    c.run_dir = (root.path / name).string();
    RunOptions o;
    o.progress = progress;
    run_training(c, o);
    return sagan::testing::read_text((root.path / name / "metrics.csv").string());
  };
  const std::string quiet = metrics(false, "quiet"), shown = metrics(true, "shown");
  // it_per_s differs; every loss must not: compare the first five columns of each row.
  auto losses = [](const std::string& csv) {
    std::string out;
    std::istringstream in(csv);
    for (std::string line; std::getline(in, line);) {
      size_t pos = 0;
      for (int i = 0; i < 5 && pos != std::string::npos; ++i) pos = line.find(',', pos + 1);
      out += line.substr(0, pos) + "\n";
    }
    return out;
  };
  CHECK(losses(shown) == losses(quiet));
  CHECK(losses(quiet).find("loss_d") != std::string::npos);
}
