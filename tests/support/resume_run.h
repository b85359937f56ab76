// The exact-resume experiment the trainer tests share (tests/test_trainer.cpp,
// tests/test_trainer_diffaug.cpp, tests/cuda/test_cuda_trainer.cpp): `steps`
// iterations straight, and again as `split` iterations, a checkpoint, and a
// fresh trainer resumed from it for the rest. The tests then compare the
// logged values or the whole state (check_same_state, also for trainers run
// other ways: step graphs, inputs drawn ahead).
#pragma once
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "sagan/models/trainer.h"
#include "tests/support/bitwise.h"
#include "tests/support/temp_dir.h"

namespace sagan::testing {

struct ResumeRun {
  std::unique_ptr<Trainer> straight, resumed;
  std::vector<StepStats> straight_stats;  // steps 1..steps
  std::vector<StepStats> resumed_stats;   // steps split+1..steps, after the resume
};

inline ResumeRun run_straight_and_resumed(const TrainConfig& c, const std::shared_ptr<const data::Dataset>& ds,
                                          int steps, int split) {
  ResumeRun run;
  run.straight = std::make_unique<Trainer>(c, ds);
  for (int i = 0; i < steps; ++i) run.straight_stats.push_back(run.straight->step());
  TempDir dir;
  const std::string ckpt = dir / "split.safetensors";
  {
    Trainer t(c, ds);
    for (int i = 0; i < split; ++i) t.step();
    t.save_checkpoint(ckpt);
  }
  run.resumed = std::make_unique<Trainer>(c, ds);
  run.resumed->load_checkpoint(ckpt);
  REQUIRE(run.resumed->step_count() == split);
  for (int i = split; i < steps; ++i) run.resumed_stats.push_back(run.resumed->step());
  return run;
}

// The resumed iterations logged exactly what the straight run logged.
inline void check_same_logged_values(const ResumeRun& run) {
  const size_t offset = run.straight_stats.size() - run.resumed_stats.size();
  for (size_t i = 0; i < run.resumed_stats.size(); ++i) {
    const StepStats &s = run.resumed_stats[i], &want = run.straight_stats[offset + i];
    INFO("step " << s.step);
    CHECK(s.step == want.step);
    CHECK(s.loss_d == want.loss_d);
    CHECK(s.loss_g == want.loss_g);
    CHECK(s.d_real == want.d_real);
    CHECK(s.d_fake == want.d_fake);
  }
}

// Every tensor of two trainers' checkpoints (weights, G_ema, Adam state, SN
// vectors, BN statistics, RNG and loader counters) equal, by name and bits;
// INFO names each that differs.
inline void check_same_state(const Trainer& a, const Trainer& b) {
  const NamedTensors ta = a.checkpoint_tensors(), tb = b.checkpoint_tensors();
  REQUIRE(ta.size() == tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    INFO(ta[i].first);
    REQUIRE(ta[i].first == tb[i].first);
    CHECK(bitwise_equal(ta[i].second, tb[i].second));
  }
}

}  // namespace sagan::testing
