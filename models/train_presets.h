// Named presets of training settings (sagan-train --preset NAME): each sets
// some settings of the table (models/train_options.cpp) to its values. A
// preset gives defaults only: a config file's settings and the options given
// on the command line win over it. config.json records the resolved values
// and the preset's name ("preset").
//
//   cpu       SAGAN-32, ch 16, batch 32, 5000 steps: recognisable
//             Fashion-MNIST in 15-30 minutes on 2 CPU cores
//             (docs/training.md); what sagan-train uses when no GPU is found
//   sagan32   the defaults: SAGAN-32, ch 64, batch 64, 100000 steps (a GPU)
//   sagan128  the paper's ImageNet setting: 128x128, batch 256, 1M steps
//             (256 was the paper's global batch, 64 x 4 GPUs: --batch-size is
//             per rank, so N ranks take --batch-size 256/N)
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sagan/models/train_options.h"

namespace sagan {

struct TrainPreset {
  std::string name;
  std::string summary;                                        // one line for --help and messages
  std::vector<std::pair<std::string, ConfigValue>> settings;  // table key -> value
};

const std::vector<TrainPreset>& train_presets();
const TrainPreset* find_train_preset(const std::string& name);  // nullptr when unknown
// "cpu, sagan32, sagan128"
std::string train_preset_names();

// Sets the preset's settings on cfg and cfg.preset = name; "" does nothing.
// An unknown name is an error listing the presets. `sources`, when given,
// records each setting in preset_of (defaults, not given settings).
void apply_preset(TrainConfig& cfg, const std::string& name, ConfigSources* sources = nullptr);

// A config file's settings, read once: sagan-train takes the preset the
// file names and then layers the file over it, and a second read could see
// a different file (edited meanwhile, or on a slow network share).
struct ConfigFileSettings {
  std::string path;                                                // "" for no file: no settings
  std::vector<std::pair<const TrainOption*, ConfigValue>> values;  // each setting it gives, in table order
  // Reads `path` (read_config_file's checks and errors); "" gives no settings.
  static ConfigFileSettings read(const std::string& path);
  // Sets each of the file's settings on cfg, recorded in `sources` as the file's.
  void apply(TrainConfig& cfg, ConfigSources* sources) const;
  const ConfigValue* find(const std::string& key) const;  // nullptr when the file does not set it
};

// The settings of a run, layered: the defaults; the preset named on the
// command line, else in the config file, else `fallback_preset`; the config
// file's settings; the command line's (`apply_cli`, which also records them
// in `given`). `given` ends up naming where each setting given came from;
// the preset's settings are defaults, not given, and are listed in
// given.preset_of for messages.
TrainConfig layered_settings(const ConfigFileSettings& file,
                             const std::function<void(TrainConfig&, ConfigSources&)>& apply_cli,
                             const std::string& fallback_preset, ConfigSources& given);

// The preset layered_settings would take from the command line or the
// config file, or "" when neither names one.
std::string named_preset(const ConfigFileSettings& file,
                         const std::function<void(TrainConfig&, ConfigSources&)>& apply_cli);

}  // namespace sagan
