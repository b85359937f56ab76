// Frechet distance while training (sagan-train --fd-every N): the training
// set's statistics are embedded once per run and kept in
// <run_dir>/fd_reference.safetensors (so a resumed run reuses them); every N
// steps the EMA generator makes the same number of images from one fixed
// seed, so the curve moves only because the generator does. The monitor uses
// its own random streams: measuring never changes the training trajectory.
#pragma once
#include <memory>
#include <string>

#include "sagan/models/data/dataset.h"
#include "sagan/models/generator.h"
#include "sagan/models/quality/evaluate.h"
#include "sagan/models/train_config.h"

namespace sagan::quality {

class FdMonitor {
 public:
  // cfg: resolved (classes and channels known). Loads the feature network
  // (errors name --fd-weights) and embeds or loads the reference statistics.
  // `name`: how the run names itself in its progress (RunOptions::name).
  FdMonitor(const TrainConfig& cfg, std::shared_ptr<const data::Dataset> dataset, const std::string& run_dir,
            Device device, bool progress, const std::string& name = "sagan-train");
  // FD between cfg.fd_samples images of g (put in eval mode) and the reference.
  double measure(SaganGenerator& g);
  const std::string& feature_net() const { return net_id_; }

 private:
  TrainConfig cfg_;
  Device device_;
  LoadedFeatureNet net_;
  std::string net_id_;
  GaussianStats reference_;
};

}  // namespace sagan::quality
