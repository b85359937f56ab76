// The table of training settings: one TrainOption per setting of a
// TrainConfig. Everything that handles settings is made from it: JSON and
// TOML reading and writing and the known keys (models/train_config.cpp),
// validation, --resume's rules, and sagan-train's command line and --help
// (tools/train_cli.cpp).
//
// Adding a setting: a member (with its default) in TrainConfig, and one
// entry in train_options() (models/train_options.cpp). Nothing else.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sagan/models/train_config.h"

namespace sagan {

// A setting's value as files and the command line carry it; ValueKind is the
// alternative's index.
using ConfigValue = std::variant<bool, int64_t, uint64_t, double, std::string, std::vector<int64_t>>;
enum class ValueKind { Bool, Int, UInt, Real, Text, IntList };
const char* kind_name(ValueKind k);            // "a boolean", "an integer", ...
std::string value_text(const ConfigValue& v);  // 64, 0.0004, fashion-mnist, [16, 32]

struct TrainOption {
  std::string key{};    // in files: "batch_size"; "model.ch" is "ch" inside "model" ({"model": {...}}, [model])
  std::string flag{};   // sagan-train's option as CLI11 names it: "--batch-size", "--hflip,!--no-hflip",
                        // "!--unpooled-attention" (a flag giving false); "" = files only
  std::string member{};  // the TrainConfig member(s) in code, when not the key: "adam_g.lr"
  std::string group{};   // --help section
  std::string help{};
  ValueKind kind = ValueKind::Int;
  // Read and write the member(s); set() gets a value of `kind`.
  std::function<ConfigValue(const TrainConfig&)> get{};
  std::function<void(TrainConfig&, const ConfigValue&)> set{};
  // "" when the value is fine, else what is wrong ("must be positive, got
  // -4"); unset: any value of the kind. Checks between settings are in
  // train_config_problem().
  std::function<std::string(const ConfigValue&)> check{};
  // With --resume, a value that differs from the run's is applied (and
  // recorded) when true; else refused, the message ending with `resume_why`.
  bool resume_applies = false;
  std::string resume_why = "a resumed run keeps the settings it was started with";
  bool show_default = true;  // in --help
  // Set from the data set when training starts (num_classes,
  // image_channels): a value given is replaced, and --resume ignores it.
  bool from_data_set = false;
  // True while the value only follows another setting (g_ch and d_ch
  // follow ch unless set): a settings file for people to edit
  // (--write-config) then leaves it out, or a later edit of the other
  // setting would be overridden by the stale copy. Run records keep it.
  std::function<bool(const TrainConfig&)> follows{};
};

// Every setting, in --help order.
const std::vector<TrainOption>& train_options();
const TrainOption* find_train_option(std::string_view key);  // nullptr when unknown

// The first problem between settings (a data set without its path, FD
// settings that do not fit, the model's architecture), or nullopt. `name`
// names another setting in the text (ConfigSources::name).
std::optional<ConfigProblem> train_config_problem(const TrainConfig& cfg,
                                                  const std::function<std::string(const std::string&)>& name);

}  // namespace sagan
