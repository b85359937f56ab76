// The consumer's second part: a whole sagan-train run (run directory,
// checkpoints, resume) on a data set of the program's own, through
// run_training and RunOptions::dataset. Returns an empty string when the run
// trained, resumed to its end and recorded the data set as "custom", else
// what went wrong.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "sagan/core/rng.h"
#include "sagan/models/train_run.h"

namespace {

// 8 gray 32x32 images in 2 classes, drawn from a seed per index.
class Noise : public sagan::data::Dataset {
 public:
  std::string name() const override { return "consumer-noise"; }
  int64_t size() const override { return 8; }
  int64_t num_classes() const override { return 2; }
  int64_t channels() const override { return 1; }
  int64_t height() const override { return 32; }
  int64_t width() const override { return 32; }
  sagan::data::Example get(int64_t i) const override {
    check_index(i);
    sagan::data::Example e;
    e.image = sagan::io::Image(32, 32, 1);
    sagan::Rng g(static_cast<uint64_t>(i) + 11);
    for (auto& p : e.image.pixels) p = static_cast<uint8_t>(g.below(256));
    e.label = i % 2;
    return e;
  }
};

}  // namespace

std::string train_on_own_data() {
  namespace fs = std::filesystem;
  using namespace sagan;
  const fs::path dir = fs::temp_directory_path() / ("sagan_consumer_run_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.batch_size = 4;
  c.steps = 2;
  c.sample_every = c.checkpoint_every = c.log_every = 1;
  c.device = "cpu";
  c.run_dir = dir.string();
  RunOptions o;
  o.progress = false;
  o.dataset = [](const TrainConfig&) { return std::make_shared<Noise>(); };
  run_training(c, o);
  TrainConfig more;
  more.steps = 3;
  o.resume_dir = dir.string();
  o.given.from_code("steps");
  run_training(more, o);
  std::ifstream in(dir / "config.json");
  std::stringstream text;
  text << in.rdbuf();
  std::string problem;
  if (text.str().find("\"custom\"") == std::string::npos) problem = "config.json does not record dataset custom";
  if (latest_checkpoint(dir.string()).find("step_00000003") == std::string::npos)
    problem = "the resumed run did not reach step 3";
  fs::remove_all(dir);
  return problem;
}
