#include "tools/train_cli.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "sagan/models/train_presets.h"
#include "tools/cli_common.h"

namespace sagan::cli {

namespace {

const char* type_name(ValueKind k) {
  switch (k) {
    case ValueKind::Int:
      return "INT";
    case ValueKind::UInt:
      return "UINT";
    case ValueKind::Real:
      return "FLOAT";
    case ValueKind::IntList:
      return "INT";
    default:
      return "TEXT";
  }
}

template <class T>
bool parse_integer(const std::string& s, T& out) {
  if (s.empty() || (std::is_unsigned_v<T> && s[0] == '-')) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Command-line text as a value of the option's kind.
ConfigValue from_text(const TrainOption& o, const std::string& flag, const std::string& text,
                      const std::vector<std::string>& items) {
  auto wrong = [&](const std::string& what) { SAGAN_FAIL("{}: expected {}, got '{}'", flag, kind_name(o.kind), what); };
  switch (o.kind) {
    case ValueKind::Int: {
      int64_t v = 0;
      if (!parse_integer(text, v)) wrong(text);
      return v;
    }
    case ValueKind::UInt: {
      uint64_t v = 0;
      if (!parse_integer(text, v)) wrong(text);
      return v;
    }
    case ValueKind::Real: {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) wrong(text);
      return v;
    }
    case ValueKind::IntList: {
      std::vector<int64_t> out;
      for (const std::string& item : items) {
        std::stringstream ss(item);
        for (std::string part; std::getline(ss, part, ',');) {
          int64_t v = 0;
          if (!parse_integer(part, v)) wrong(item);
          out.push_back(v);
        }
      }
      return out;
    }
    default:
      return text;
  }
}

// " (--preset cpu: 16)": the presets that give the setting another value
// than its default, so that --help shows what a preset run (the CPU's, by
// default) would take, not only the default. "" when none does.
std::string preset_note(const TrainOption& o, const ConfigValue& default_value) {
  std::vector<std::string> values;
  for (const TrainPreset& p : train_presets())
    for (const auto& [key, value] : p.settings)
      if (key == o.key && value != default_value) values.push_back(p.name + ": " + value_text(value));
  return values.empty() ? "" : fmt::format(" (--preset {})", fmt::join(values, ", "));
}

}  // namespace

void TrainSettingsCli::add_to(CLI::App& app) {
  const TrainConfig defaults;
  slots_.clear();
  slots_.reserve(train_options().size());
  groups_.clear();
  for (const TrainOption& o : train_options()) {
    if (o.flag.empty()) continue;
    CLI::Option_group*& group = groups_[o.group];
    if (group == nullptr) group = app.add_option_group(o.group);
    Slot& s = slots_.emplace_back(Slot{&o});
    if (o.kind == ValueKind::Bool && o.flag[0] == '!' && o.flag.find(',') == std::string::npos) {
      // A lone "!--name" gives false; added as a plain flag so that --help
      // does not show CLI11's "{false}".
      s.cli = group->add_flag(o.flag.substr(1), s.flag, o.help);
      s.cli->multi_option_policy(CLI::MultiOptionPolicy::Throw);  // given twice: refused as every option is
      s.negated = true;
      continue;
    }
    if (o.kind == ValueKind::Bool) {
      s.flag = std::get<bool>(o.get(defaults));
      s.cli = group->add_flag(o.flag, s.flag, o.help + (s.flag ? " (default: on)" : " (default: off)"));
      // --hflip --no-hflip, or --hflip twice: which one was meant is unclear.
      s.cli->multi_option_policy(CLI::MultiOptionPolicy::Throw);
      continue;
    }
    if (o.kind == ValueKind::IntList)
      s.cli = group->add_option(o.flag, s.items, o.help + preset_note(o, o.get(defaults)));
    else
      s.cli = group->add_option(o.flag, s.text, o.help + preset_note(o, o.get(defaults)));
    s.cli->type_name(type_name(o.kind));
    if (o.show_default) s.cli->default_str(value_text(o.get(defaults)));
    // A path whose default is "" (the default location) given as "" is a
    // script's unset variable: refused, not taken for the default (a run on
    // the wrong data, in a new folder). --preset '' still means none.
    if (o.key == "data_path" || o.key == "run_dir" || o.key == "fd_weights") s.cli->check(not_empty());
  }
}

void TrainSettingsCli::apply(TrainConfig& cfg, ConfigSources& sources) const {
  for (const Slot& s : slots_) {
    if (s.cli->count() == 0) continue;
    const TrainOption& o = *s.option;
    const std::string flag = s.cli->get_name();
    o.set(cfg, o.kind == ValueKind::Bool ? ConfigValue(s.flag != s.negated) : from_text(o, flag, s.text, s.items));
    sources.from_flag(o.key, flag);
  }
}

}  // namespace sagan::cli
