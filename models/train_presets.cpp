// The presets of sagan-train --preset (see train_presets.h). Values are
// table settings, so a preset can hold nothing a config file could not.
#include "sagan/models/train_presets.h"

#include <algorithm>

namespace sagan {

namespace {

std::vector<TrainPreset> make_presets() {
  using V = std::vector<std::pair<std::string, ConfigValue>>;
  return {
      {"cpu", "SAGAN-32, ch 16, batch 32, 5000 steps (recognisable Fashion-MNIST in 15-30 minutes on 2 CPU cores)",
       V{{"model.resolution", int64_t{32}},
         {"model.ch", int64_t{16}},
         {"batch_size", int64_t{32}},
         {"steps", int64_t{5000}},
         // 0.9999 averages over ~10k steps, longer than the run
         {"ema_decay", 0.999},
         {"ema_start", int64_t{500}},
         {"log_every", int64_t{25}},
         {"sample_every", int64_t{500}},
         {"checkpoint_every", int64_t{500}}}},
      {"sagan32", "SAGAN-32, ch 64, batch 64, 100000 steps (the defaults, for a GPU: days on a CPU)",
       V{{"model.resolution", int64_t{32}},
         {"model.ch", int64_t{64}},
         {"batch_size", int64_t{64}},
         {"steps", int64_t{100000}},
         {"ema_decay", 0.9999},
         {"ema_start", int64_t{1000}},
         {"log_every", int64_t{10}},
         {"sample_every", int64_t{500}},
         {"checkpoint_every", int64_t{500}}}},
      {"sagan128",
       "SAGAN-128, ch 64, batch 256, 1M steps (the paper's ImageNet setting; --dataset folder --data DIR; "
       "256 is the global batch: on N ranks with A passes each give --batch-size 256/(N A) --accumulate A)",
       V{{"model.resolution", int64_t{128}},
         {"model.ch", int64_t{64}},
         {"batch_size", int64_t{256}},
         {"steps", int64_t{1000000}},
         {"ema_decay", 0.9999},
         {"ema_start", int64_t{20000}},
         {"log_every", int64_t{100}},
         {"sample_every", int64_t{5000}},
         {"checkpoint_every", int64_t{5000}}}},
  };
}

}  // namespace

const std::vector<TrainPreset>& train_presets() {
  static const std::vector<TrainPreset> presets = make_presets();
  return presets;
}

const TrainPreset* find_train_preset(const std::string& name) {
  for (const TrainPreset& p : train_presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::string train_preset_names() {
  std::vector<std::string> names;
  for (const TrainPreset& p : train_presets()) names.push_back(p.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

void apply_preset(TrainConfig& cfg, const std::string& name, ConfigSources* sources) {
  if (name.empty()) return;
  const TrainPreset* p = find_train_preset(name);
  SAGAN_CHECK(p != nullptr, "preset: '{}' is not one of {}", name, train_preset_names());
  for (const auto& [key, value] : p->settings) {
    const TrainOption* o = find_train_option(key);
    SAGAN_CHECK(o != nullptr && value.index() == static_cast<size_t>(o->kind),
                "preset {}: {} is not a setting of its kind", name, key);
    o->set(cfg, value);
    if (sources) sources->preset_of[key] = name;
  }
  cfg.preset = name;
}

ConfigFileSettings ConfigFileSettings::read(const std::string& path) {
  ConfigFileSettings file;
  file.path = path;
  if (path.empty()) return file;
  TrainConfig read;
  ConfigSources given;
  read_config_file(path, read, &given);
  for (const TrainOption& o : train_options())
    if (given.given(o.key)) file.values.emplace_back(&o, o.get(read));
  return file;
}

void ConfigFileSettings::apply(TrainConfig& cfg, ConfigSources* sources) const {
  for (const auto& [option, value] : values) {
    option->set(cfg, value);
    if (sources) sources->from_file(option->key, path);
  }
}

const ConfigValue* ConfigFileSettings::find(const std::string& key) const {
  for (const auto& [option, value] : values)
    if (option->key == key) return &value;
  return nullptr;
}

namespace {
// The preset named on the command line, else in the config file, and where
// it was named ("--preset", "my.toml: preset"); empty when neither does.
std::pair<std::string, std::string> preset_named(const ConfigFileSettings& file,
                                                 const std::function<void(TrainConfig&, ConfigSources&)>& apply_cli) {
  TrainConfig cli;
  ConfigSources cli_given;
  apply_cli(cli, cli_given);
  if (cli_given.given("preset")) return {cli.preset, cli_given.where("preset")};
  if (const ConfigValue* preset = file.find("preset")) {
    ConfigSources file_given;
    file_given.from_file("preset", file.path);
    return {std::get<std::string>(*preset), file_given.where("preset")};
  }
  return {};
}
}  // namespace

std::string named_preset(const ConfigFileSettings& file,
                         const std::function<void(TrainConfig&, ConfigSources&)>& apply_cli) {
  return preset_named(file, apply_cli).first;
}

TrainConfig layered_settings(const ConfigFileSettings& file,
                             const std::function<void(TrainConfig&, ConfigSources&)>& apply_cli,
                             const std::string& fallback_preset, ConfigSources& given) {
  auto [preset, where] = preset_named(file, apply_cli);
  SAGAN_CHECK(preset.empty() || find_train_preset(preset) != nullptr, "{}: '{}' is not one of {}", where, preset,
              train_preset_names());
  if (preset.empty()) preset = fallback_preset;
  TrainConfig cfg;
  apply_preset(cfg, preset, &given);
  file.apply(cfg, &given);
  apply_cli(cfg, given);
  return cfg;
}

}  // namespace sagan
