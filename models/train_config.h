// TrainConfig: every setting of a training run. The resolved config is
// stored as JSON in the run directory and in every checkpoint, so a run can
// be resumed and a checkpoint sampled without the original command line.
#pragma once
#include <cstdint>
#include <string>

#include "models/config.h"

namespace sagan {

struct TrainConfig {
  SaganConfig model;  // num_classes / image_channels come from the data set
  bool unconditional = false;

  // data
  std::string dataset = "fashion-mnist";  // fashion-mnist | cifar10 | folder
  std::string data_path;                  // empty: the data set's default
  bool hflip = false;

  // optimisation (SAGAN's TTUR defaults)
  int64_t batch_size = 64;
  int64_t steps = 100000;  // generator steps; each has n_dis D steps
  int64_t n_dis = 1;
  double lr_g = 1e-4, lr_d = 4e-4, beta1 = 0.0, beta2 = 0.9, adam_eps = 1e-8;
  double ema_decay = 0.9999;
  int64_t ema_start = 1000;  // EMA copies G exactly before this step
  double grad_clip = 0.0;    // max global gradient norm per network; 0 = off
  uint64_t seed = 0;
  std::string device = "auto";  // auto (cuda when present) | cpu | cuda | cuda:N

  // output
  std::string run_dir;  // empty: runs/<date-time>
  int64_t log_every = 10;
  int64_t sample_every = 500;
  int64_t checkpoint_every = 500;
  int64_t keep_checkpoints = 3;
  int64_t sample_per_class = 10;  // grid rows (one column per class)

  // Frechet distance during training (models/quality/fd_monitor.h)
  int64_t fd_every = 0;              // 0 = off; a multiple of log_every
  int64_t fd_samples = 2000;         // generated and real images per measurement
  std::string fd_features = "auto";  // auto (fmnist for Fashion-MNIST, else inception) | fmnist | inception
  std::string fd_weights;            // feature-net weights; empty: the committed fmnist file

  // Throws naming the option and the value when a setting is invalid.
  void validate() const;
  std::string to_json() const;
  // Unknown keys and wrong types are errors naming `source` and the key.
  static TrainConfig from_json(const std::string& text, const std::string& source);
};

}  // namespace sagan
