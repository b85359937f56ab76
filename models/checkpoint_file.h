// Reading a sagan-train checkpoint outside the Trainer (sampling, evaluation,
// attention maps): find it, read the config it was trained with, load one of
// its networks. The tensor names are documented in docs/checkpoints.md.
#pragma once
#include <string>

#include "core/io/safetensors.h"
#include "layers/module.h"
#include "models/train_config.h"

namespace sagan {

struct CheckpointFile {
  std::string path;  // the .safetensors file
  io::SafetensorsFile file;
  TrainConfig config;
  std::string step;  // metadata "step", or "?"
};

// A .safetensors file, or a run directory (its newest checkpoint). Errors
// name the path: missing, no checkpoints in a directory, not a sagan-train
// checkpoint (no config metadata).
CheckpointFile open_checkpoint(const std::string& file_or_run);

// Loads the tensors under `prefix` ("G_ema.", "G.", "D.") into m; errors name
// the file, the prefix and the tensor.
void load_network(nn::Module& m, const CheckpointFile& c, const std::string& prefix);

}  // namespace sagan
