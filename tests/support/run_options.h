// How the run_training tests call it: quietly, and resumed as sagan-train
// --resume DIR --steps N --quiet would (tests/test_trainer.cpp,
// tests/test_reliability.cpp, tests/test_train_data_options.cpp).
#pragma once
#include <cstdint>
#include <string>

#include "sagan/models/train_run.h"

namespace sagan::testing {

// No progress lines.
inline RunOptions quiet_options() {
  RunOptions o;
  o.progress = false;
  return o;
}

// --resume dir with --steps given on the command line.
inline RunOptions resume_options(const std::string& dir) {
  RunOptions o = quiet_options();
  o.resume_dir = dir;
  o.given.from_flag("steps", "--steps");
  return o;
}

// The settings a resume passes: only the new step count.
inline TrainConfig more_steps(int64_t steps) {
  TrainConfig c;
  c.steps = steps;
  return c;
}

}  // namespace sagan::testing
