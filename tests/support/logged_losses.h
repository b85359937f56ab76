// A run directory's metrics.csv reduced to what two runs of the same
// training log alike: the step, loss_d, loss_g, d_real and d_fake columns of
// every row (it/s and the other timing columns differ from run to run); and
// the experiment that compares them, a straight run_training run against an
// interrupted and resumed one (tests/test_trainer.cpp,
// tests/test_train_data_options.cpp, tests/mpi/dp_check.cpp).
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include "sagan/models/train_run.h"

namespace sagan::testing {

inline std::string logged_losses(const std::filesystem::path& metrics_csv) {
  std::ifstream in(metrics_csv);
  std::string line, out;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    size_t pos = 0;
    for (int i = 0; i < 5; ++i) pos = line.find(',', pos) + 1;
    out += line.substr(0, pos) + "\n";
  }
  return out;
}

struct StraightAndResumedLosses {
  std::string straight, resumed;
};

// run_training of c for `steps` into root/straight, and for `split` into
// root/split, resumed there to `steps` (opt with resume_dir and the steps
// given in code); both runs' logged losses (rank 0 writes them).
inline StraightAndResumedLosses train_straight_and_resumed(TrainConfig c, const RunOptions& opt,
                                                           const std::filesystem::path& root, int64_t steps,
                                                           int64_t split) {
  c.steps = steps;
  c.run_dir = (root / "straight").string();
  run_training(c, opt);
  c.steps = split;
  c.run_dir = (root / "split").string();
  run_training(c, opt);
  TrainConfig more;
  more.steps = steps;
  RunOptions resume = opt;
  resume.resume_dir = c.run_dir;
  resume.given.from_code("steps");
  run_training(more, resume);
  return {logged_losses(root / "straight" / "metrics.csv"), logged_losses(root / "split" / "metrics.csv")};
}

}  // namespace sagan::testing
