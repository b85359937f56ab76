#include "models/checkpoint_file.h"

#include <filesystem>

#include "models/train_run.h"

namespace sagan {

namespace fs = std::filesystem;

CheckpointFile open_checkpoint(const std::string& file_or_run) {
  CheckpointFile c;
  c.path = file_or_run;
  if (fs::is_directory(file_or_run)) {
    c.path = latest_checkpoint(file_or_run);
    SAGAN_CHECK(!c.path.empty(), "{}: a directory without checkpoints/step_*.safetensors", file_or_run);
  }
  SAGAN_CHECK(fs::exists(c.path), "{}: no such checkpoint file or run directory", c.path);
  c.file = io::load_safetensors(c.path);
  auto it = c.file.metadata.find("config");
  SAGAN_CHECK(it != c.file.metadata.end(), "{}: not a sagan-train checkpoint (no 'config' metadata)", c.path);
  c.config = TrainConfig::from_json(it->second, c.path + " (config metadata)");
  auto step = c.file.metadata.find("step");
  c.step = step != c.file.metadata.end() ? step->second : "?";
  return c;
}

void load_network(nn::Module& m, const CheckpointFile& c, const std::string& prefix) {
  std::map<std::string, Tensor> state;
  for (auto& [k, v] : c.file.tensors)
    if (k.compare(0, prefix.size(), prefix) == 0) state.emplace(k.substr(prefix.size()), v);
  SAGAN_CHECK(!state.empty(), "{}: no '{}*' tensors in the checkpoint", c.path, prefix);
  try {
    m.load_state(state);
  } catch (const Error& e) {
    SAGAN_FAIL("{} ({}*): {}", c.path, prefix, e.what());
  }
}

}  // namespace sagan
