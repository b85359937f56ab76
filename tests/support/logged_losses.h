// A run directory's metrics.csv reduced to what two runs of the same
// training log alike: the step, loss_d, loss_g, d_real and d_fake columns of
// every row (it/s and the other timing columns differ from run to run). For
// the tests that compare a straight run_training run with an interrupted and
// resumed one (tests/test_trainer.cpp, tests/test_train_data_options.cpp).
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

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

}  // namespace sagan::testing
