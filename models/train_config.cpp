// TrainConfig from and to JSON and TOML, validation and --resume's rules,
// all driven by the table in models/train_options.cpp.
//
// Files are read strictly: both formats become one tree (nlohmann::json;
// TOML through toml++) that is walked against the table, so a key the table
// does not have, a value of the wrong type, a duplicate key or a syntax
// error is an error naming the file and the key.
#include "sagan/models/train_config.h"

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/text.h"
#include "sagan/core/warning.h"
#include "sagan/models/train_options.h"

namespace sagan {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------- naming

namespace {
// The option's first name without CLI11's "!": "--hflip,!--no-hflip" -> "--hflip".
std::string primary_flag(const TrainOption& o) {
  std::string f = o.flag.substr(0, o.flag.find(','));
  return !f.empty() && f[0] == '!' ? f.substr(1) : f;
}

// "TrainConfig.adam_g.lr (--lr-g)": a setting as a program sets it.
std::string code_name(const std::string& key) {
  const TrainOption* o = find_train_option(key);
  const std::string member = fmt::format("TrainConfig.{}", o && !o->member.empty() ? o->member : key);
  return o && !o->flag.empty() ? fmt::format("{} ({})", member, primary_flag(*o)) : member;
}
}  // namespace

void ConfigSources::from_code(const std::string& key) {
  SAGAN_CHECK(find_train_option(key), "ConfigSources::from_code: '{}' is not a setting (the keys of config.json)", key);
  by_key[key] = {"", code_name(key)};
}

std::string ConfigSources::where(const std::string& key) const {
  auto it = by_key.find(key);
  if (it != by_key.end()) return it->second.file.empty() ? it->second.flag : it->second.file + ": " + key;
  if (in_code) return code_name(key);
  const TrainOption* o = find_train_option(key);
  return o && !o->flag.empty() ? primary_flag(*o) : key;
}

std::string ConfigSources::name(const std::string& key) const {
  auto it = by_key.find(key);
  if (it != by_key.end() && !it->second.file.empty()) return key;
  auto preset = preset_of.find(key);
  if (it == by_key.end() && preset != preset_of.end()) return where(key) + " of the " + preset->second + " preset";
  return where(key);
}

void TrainConfig::validate(const ConfigSources& sources) const {
  for (const TrainOption& o : train_options()) {
    // config.json is JSON: a path in another encoding (Latin-1 bytes) could
    // not be recorded, and would fail later as an internal error.
    const ConfigValue value = o.get(*this);
    if (const auto* text = std::get_if<std::string>(&value); text && !valid_utf8(*text))
      SAGAN_FAIL("{}: '{}' is not UTF-8 text, which config.json must hold (a relative path is made absolute "
                 "first: the working directory counts); rename it, or reach it through a link with a UTF-8 name",
                 sources.where(o.key), *text);
    if (!o.check) continue;
    const std::string problem = o.check(value);
    SAGAN_CHECK(problem.empty(), "{}: {}", sources.where(o.key), problem);
  }
  auto name = [&](const std::string& key) { return sources.name(key); };
  if (auto p = train_config_problem(*this, name)) SAGAN_FAIL("{}: {}", sources.where(p->key), p->text);
}

// ---------------------------------------------------------------- values

namespace {

std::string json_summary(const json& v) {
  const char* type = v.is_boolean()          ? "boolean"
                     : v.is_number_integer() ? "integer"
                     : v.is_number_float()   ? "float"
                     : v.is_string()         ? "string"
                     : v.is_array()          ? "array"
                     : v.is_object()         ? "table"
                                             : "null";
  if (v.is_null()) return "null";  // not "null null"
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return fmt::format("{} {}", type, text);
}

// A file's value for option o, of o's kind exactly: no number from a
// string, no integer from a float or a boolean. `where` is "file: key".
ConfigValue read_value(const json& v, const TrainOption& o, const std::string& where) {
  auto wrong = [&]() { SAGAN_FAIL("{}: expected {}, got {}", where, kind_name(o.kind), json_summary(v)); };
  switch (o.kind) {
    case ValueKind::Bool:
      if (!v.is_boolean()) wrong();
      return v.get<bool>();
    case ValueKind::Int:
      if (!v.is_number_integer()) wrong();
      SAGAN_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()),
                  "{}: {} is out of range", where, v.dump());
      return v.get<int64_t>();
    case ValueKind::UInt:
      if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) wrong();
      return v.get<uint64_t>();
    case ValueKind::Real: {
      if (!v.is_number()) wrong();
      const double x = v.get<double>();
      SAGAN_CHECK(std::isfinite(x), "{}: expected a finite number, got {}", where, x);
      return x;
    }
    case ValueKind::Text:
      if (!v.is_string()) wrong();
      return v.get<std::string>();
    case ValueKind::IntList: {
      if (!v.is_array()) wrong();
      std::vector<int64_t> out;
      for (const json& e : v) {
        if (!e.is_number_integer() || (e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(INT64_MAX))) wrong();
        out.push_back(e.get<int64_t>());
      }
      return out;
    }
  }
  wrong();
  return {};
}

json to_json_value(const ConfigValue& v) {
  return std::visit([](const auto& x) { return json(x); }, v);
}

// ---------------------------------------------------------------- unknown keys

std::string squash(const std::string& s) {  // "Batch-Size" -> "batchsize"
  std::string out;
  for (char c : s)
    if (c != '_' && c != '-' && c != '.') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean batch_size?)" for batchsize_typo, batch-size, ch (model.ch), ...
std::string suggestion(const std::string& key) {
  const std::string k = squash(key);
  const TrainOption* best = nullptr;
  size_t best_d = 3;  // at most 2 edits, or a shared prefix of 4+ letters
  for (const TrainOption& o : train_options()) {
    std::vector<std::string> names = {squash(o.key), squash(o.key.substr(o.key.rfind('.') + 1))};
    if (!o.flag.empty()) names.push_back(squash(primary_flag(o)));
    for (const std::string& n : names) {
      size_t d = edit_distance(k, n);
      const size_t common = std::min(k.size(), n.size());
      if (d > 0 && common >= 4 && k.compare(0, common, n, 0, common) == 0) d = std::min<size_t>(d, 2);
      if (d < best_d) best_d = d, best = &o;
    }
  }
  return best ? fmt::format(" (did you mean {}?)", best->key) : "; sagan-train --write-config FILE lists every key";
}

bool is_section(const std::string& key) {
  for (const TrainOption& o : train_options())
    if (o.key.size() > key.size() && o.key.compare(0, key.size() + 1, key + ".") == 0) return true;
  return false;
}

// The settings in `tree` (a JSON object or a converted TOML table), each
// checked for its kind, with the table entry it belongs to.
struct FileSetting {
  const TrainOption* option;
  ConfigValue value;
};
void collect_tree(const json& tree, const std::string& prefix, const std::string& source,
                  std::vector<FileSetting>& out) {
  for (auto& [k, v] : tree.items()) {
    const std::string key = prefix + k;
    const TrainOption* o = k.find('.') == std::string::npos ? find_train_option(key) : nullptr;
    if (o) {
      out.push_back({o, read_value(v, *o, source + ": " + key)});
    } else if (k.find('.') == std::string::npos && is_section(key)) {
      SAGAN_CHECK(v.is_object(), "{}: {}: expected a table of settings ({}.KEY = ...), got {}", source, key, key,
                  json_summary(v));
      collect_tree(v, key + ".", source, out);
    } else if (k.find('.') != std::string::npos && find_train_option(key) != nullptr) {
      // JSON's "model.ch", TOML's quoted "model.ch": one name with a dot in it.
      const size_t dot = key.find('.');
      SAGAN_FAIL(
          "{}: {}: a key with a dot in it is one name, not a setting of a table; write it inside its table "
          "({{\"{}\": {{\"{}\": ...}}}} in JSON, [{}] {} = ... or {} = ... unquoted in TOML)",
          source, key, key.substr(0, dot), key.substr(dot + 1), key.substr(0, dot), key.substr(dot + 1), key);
    } else {
      SAGAN_FAIL("{}: {}: unknown key{}", source, key, suggestion(key));
    }
  }
}

// Applies every setting in `tree`, in the table's order whatever the file's
// (model.ch before model.g_ch / model.d_ch, which it resets).
void read_tree(const json& tree, const std::string& source, TrainConfig& cfg, ConfigSources* sources) {
  std::vector<FileSetting> settings;
  collect_tree(tree, "", source, settings);
  const TrainOption* first = train_options().data();
  std::stable_sort(settings.begin(), settings.end(),
                   [&](const FileSetting& a, const FileSetting& b) { return a.option - first < b.option - first; });
  for (const FileSetting& s : settings) {
    s.option->set(cfg, s.value);
    if (sources) sources->from_file(s.option->key, source);
  }
}

// ---------------------------------------------------------------- TOML

// A TOML document as the JSON tree read_tree takes; `where` is the key path,
// `source` the file, both named by errors.
json toml_tree(const toml::node& n, const std::string& source, const std::string& where) {
  if (const toml::table* t = n.as_table()) {
    json out = json::object();
    for (auto&& [k, v] : *t) {
      const std::string key(k.str());
      out[key] = toml_tree(v, source, where.empty() ? key : where + "." + key);
    }
    return out;
  }
  if (const toml::array* a = n.as_array()) {
    json out = json::array();
    for (const toml::node& e : *a) out.push_back(toml_tree(e, source, where));
    return out;
  }
  if (auto s = n.value_exact<std::string>()) return *s;
  if (auto i = n.value_exact<int64_t>()) return *i;
  if (auto f = n.value_exact<double>()) return *f;
  if (auto b = n.value_exact<bool>()) return *b;
  SAGAN_FAIL("{}: {}: dates and times are not settings", source, where);
}

std::string toml_value(const ConfigValue& v, const std::string& key) {
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* u = std::get_if<uint64_t>(&v)) {
    SAGAN_CHECK(*u <= uint64_t(INT64_MAX), "{}: {} does not fit a TOML integer (at most 2^63 - 1)", key, *u);
    return fmt::format("{}", *u);
  }
  if (auto* d = std::get_if<double>(&v)) {
    std::string s = fmt::format("{}", *d);                        // shortest text that reads back exactly
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // TOML floats need a point or an exponent
    return s;
  }
  if (auto* s = std::get_if<std::string>(&v)) {
    std::ostringstream os;
    os << toml::value<std::string>(*s);  // toml++ quotes and escapes
    return os.str();
  }
  return value_text(v);  // integers, [16, 32]
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SAGAN_CHECK(in.good(), "{}: cannot read the config file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  SAGAN_CHECK(!in.bad(), "{}: cannot read the config file", path);
  return ss.str();
}

enum class Format { Json, Toml };
Format format_of(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".json") return Format::Json;
  if (ext == ".toml") return Format::Toml;
  SAGAN_FAIL("{}: a config file must end in .json or .toml, not '{}'", path, fs::path(path).extension().string());
}

}  // namespace

// ---------------------------------------------------------------- reading

void read_json_config(const std::string& text, const std::string& source, TrainConfig& cfg, ConfigSources* sources) {
  // nlohmann keeps the last of duplicate keys; the parser callback refuses
  // them, named with the tables they are in ("model.ch").
  struct OpenObject {
    std::string path;  // "" at the top, "model." inside "model"
    std::set<std::string> keys;
  };
  std::vector<OpenObject> open_objects;
  std::string duplicate, last_key;
  auto refuse_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start)
      open_objects.push_back({open_objects.empty() ? "" : open_objects.back().path + last_key + ".", {}});
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key) {
      last_key = parsed.get<std::string>();
      if (!open_objects.back().keys.insert(last_key).second && duplicate.empty())
        duplicate = open_objects.back().path + last_key;
    }
    return true;
  };
  json tree;
  try {
    tree = json::parse(text, refuse_duplicates);
  } catch (const json::exception& e) {
    SAGAN_FAIL("{}: not valid JSON: {}", source, e.what());
  }
  SAGAN_CHECK(duplicate.empty(), "{}: {}: the key is given twice", source, duplicate);
  SAGAN_CHECK(tree.is_object(), "{}: expected a JSON object of settings, got {}", source, json_summary(tree));
  read_tree(tree, source, cfg, sources);
}

void read_toml_config(const std::string& text, const std::string& source, TrainConfig& cfg, ConfigSources* sources) {
  toml::table doc;
  try {
    doc = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    SAGAN_FAIL("{}:{}:{}: not valid TOML: {}", source, e.source().begin.line, e.source().begin.column, e.description());
  }
  read_tree(toml_tree(doc, source, ""), source, cfg, sources);
}

TrainConfig TrainConfig::from_json(const std::string& text, const std::string& source) {
  TrainConfig c;
  read_json_config(text, source, c, nullptr);
  return c;
}

TrainConfig TrainConfig::from_toml(const std::string& text, const std::string& source) {
  TrainConfig c;
  read_toml_config(text, source, c, nullptr);
  return c;
}

void read_config_file(const std::string& path, TrainConfig& cfg, ConfigSources* sources) {
  const Format format = format_of(path);
  std::error_code ec;
  SAGAN_CHECK(fs::exists(path, ec), "{}: no such config file", path);
  SAGAN_CHECK(!fs::is_directory(path, ec), "{}: is a directory, not a config file", path);
  const std::string text = read_text(path);
  if (format == Format::Json)
    read_json_config(text, path, cfg, sources);
  else
    read_toml_config(text, path, cfg, sources);
}

// ---------------------------------------------------------------- writing

namespace {
std::string json_of(const TrainConfig& cfg, bool all) {
  json tree = json::object();
  for (const TrainOption& o : train_options()) {
    // For editing: neither a value that follows another setting nor one
    // the data set or the launch sets (a file's value would be ignored).
    if (!all && ((o.follows && o.follows(cfg)) || o.from_data_set)) continue;
    std::string pointer = "/" + o.key;  // "model.ch" -> "/model/ch"
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    tree[json::json_pointer(pointer)] = to_json_value(o.get(cfg));
  }
  return tree.dump(2) + "\n";
}
}  // namespace

std::string TrainConfig::to_json() const { return json_of(*this, true); }
std::string TrainConfig::to_json_for_editing() const { return json_of(*this, false); }

std::string TrainConfig::to_toml() const {
  // Settings at the top, then one [section] per dotted prefix; each with its
  // help as a comment.
  std::string top, sections, open;
  for (const TrainOption& o : train_options()) {
    const size_t dot = o.key.find('.');
    const std::string leaf = dot == std::string::npos ? o.key : o.key.substr(dot + 1);
    // A value that only follows another setting is commented out: left in,
    // it would override a later edit of that setting.
    const bool follows = o.follows && o.follows(*this);
    const char* note = o.from_data_set ? "  # set when the run starts; a value here is ignored"
                       : follows       ? "  # follows another setting now; uncomment to set it apart"
                                       : "";
    std::string line = fmt::format("# {}{}\n{}{} = {}{}\n", o.help, o.flag.empty() ? "" : " (" + primary_flag(o) + ")",
                                   follows || o.from_data_set ? "# " : "", leaf, toml_value(o.get(*this), o.key), note);
    if (dot == std::string::npos) {
      top += line;
      continue;
    }
    const std::string section = o.key.substr(0, dot);
    if (section != open) sections += fmt::format("\n[{}]\n", open = section);
    sections += line;
  }
  return "# sagan-train settings (keys as in a run's config.json)\n" + top + sections;
}

void write_config_file(const std::string& path, const TrainConfig& cfg) {
  std::string text;
  try {
    text = format_of(path) == Format::Json ? cfg.to_json_for_editing() : cfg.to_toml();
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(path + ":", 0) == 0) throw;
    SAGAN_FAIL("{}: {}", path, e.what());
  }
  io::write_file_atomic(path, text);
}

// ---------------------------------------------------------------- --resume

namespace {
// Values a run resolves when it starts and records resolved: channels
// "auto" (the data set's), run_dir "" (a new timestamped directory). Given
// with --resume (a file --write-config wrote holds both), they ask for
// nothing else than what the run has.
bool stands_for_what_the_run_resolved(const TrainOption& o, const ConfigValue& v) {
  const auto* text = std::get_if<std::string>(&v);
  return text && ((o.key == "channels" && *text == "auto") || (o.key == "run_dir" && text->empty()));
}
}  // namespace

std::vector<ConfigChange> apply_on_resume(TrainConfig& saved, const std::string& saved_source, const TrainConfig& given,
                                          const ConfigSources& given_sources) {
  // A program's TrainConfig: a member it changed from the default, to other
  // than the run has, but did not list in RunOptions::given is not applied
  // (the resume keeps the run's). Said, naming each, not dropped silently;
  // a warning, since a program may rightly pass the settings it started
  // with, or a seed or device of its own, and mean the run's.
  if (given_sources.in_code) {
    const TrainConfig defaults;
    std::string could, cannot;
    for (const TrainOption& o : train_options()) {
      // Not compared: those listed (applied or refused below), those the data
      // set sets, those that follow another setting (g_ch follows ch, which
      // is compared), where the run is (resume_dir decides), and the data
      // set's name in a run of a program's own (the factory serves it).
      if (given_sources.given(o.key) || o.from_data_set || (o.follows && o.follows(given)) || o.key == "run_dir" ||
          (o.key == "dataset" && saved.dataset == "custom"))
        continue;
      const ConfigValue now = o.get(given), was = o.get(saved);
      if (now == o.get(defaults) || now == was || stands_for_what_the_run_resolved(o, now)) continue;
      std::string& list = o.resume_applies ? could : cannot;
      list += fmt::format("{}{} = {} (the run has {})", list.empty() ? "" : ", ", given_sources.where(o.key),
                          value_text(now), value_text(was));
    }
    if (!could.empty())
      warn(
          fmt::format("resuming {}: {} not applied: a resume applies only the settings RunOptions::given lists "
                      "(given.from_code(\"steps\"))",
                      saved_source, could));
    if (!cannot.empty())
      warn(fmt::format("resuming {}: {} not applied: a resume keeps the run's (start a new run to change them)",
                       saved_source, cannot));
  }
  std::vector<ConfigChange> changes;
  for (const TrainOption& o : train_options()) {
    if (!given_sources.given(o.key) || o.from_data_set) continue;
    const ConfigValue was = o.get(saved), now = o.get(given);
    if (was == now || stands_for_what_the_run_resolved(o, now)) continue;
    SAGAN_CHECK(o.resume_applies,
                "{}: {} given with --resume, but the run has {} = {} ({}): {}; start a new run to change it",
                given_sources.where(o.key), value_text(now), o.key, value_text(was), saved_source, o.resume_why);
    o.set(saved, now);
    changes.push_back({o.key, value_text(was), value_text(now), given_sources.where(o.key)});
  }
  return changes;
}

}  // namespace sagan
