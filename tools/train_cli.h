// sagan-train's command line for the training settings, made from the table
// in models/train_options.cpp: one option per entry with a flag, in its
// --help group, with its help and default. Values are read as text and
// converted with the same rules as config files, so "--batch-size 4.5" and
// "batch_size = 4.5" are refused alike.
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "sagan/models/train_options.h"

namespace sagan::cli {

class TrainSettingsCli {
 public:
  // Adds the options to `app` (group by group, as the table orders them).
  void add_to(CLI::App& app);
  // After parsing: the settings given on the command line, over cfg,
  // each recorded in `sources` under the option given.
  void apply(TrainConfig& cfg, ConfigSources& sources) const;
  // The --help group of that name (after add_to), for the tool's own options.
  CLI::Option_group* group(const std::string& name) const { return groups_.at(name); }

 private:
  struct Slot {
    const TrainOption* option;
    CLI::Option* cli = nullptr;
    std::string text;                // Int, UInt, Real, Text
    std::vector<std::string> items;  // IntList: "16 32" or "16,32"
    bool flag = false;               // Bool
    bool negated = false;            // a lone "!--name": given means false
  };
  std::vector<Slot> slots_;  // reserved up front: CLI11 keeps pointers into it
  std::map<std::string, CLI::Option_group*> groups_;
};

}  // namespace sagan::cli
