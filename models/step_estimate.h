// How long a training run will take, known before its first step: one
// iteration (n_dis D steps and a G step, as models/trainer.cpp does them) is
// timed on throwaway networks of the run's architecture, so the run's own
// networks and random streams are untouched.
#pragma once
#include "sagan/core/tensor.h"
#include "sagan/models/train_config.h"

namespace sagan {

// Seconds of one iteration of cfg (resolved: classes and channels known) on
// `device`: an untimed warm-up at batch 2 (and on a GPU one at cfg.batch_size,
// whose convolution geometries are new), then one timed at cfg.batch_size.
// Leaves out Adam and the EMA update (a pass over the parameters, small next
// to the convolutions). With --accumulate N, N times the timed iteration.
double estimate_iteration_seconds(const TrainConfig& cfg, Device device);

}  // namespace sagan
