// Presets (models/train_presets.h): each holds valid table settings, and the
// layers stack as documented: defaults < preset < config file < command line,
// the preset named on the command line over the file's, the fallback only
// when none is named.
#include <catch2/catch.hpp>

#include "sagan/core/io/atomic_file.h"
#include "sagan/models/train_presets.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using sagan::testing::TempDir;

namespace {
// What sagan-train's command line would apply: `settings` as options.
std::function<void(TrainConfig&, ConfigSources&)> cli(std::vector<std::pair<std::string, ConfigValue>> settings) {
  return [settings](TrainConfig& c, ConfigSources& given) {
    for (const auto& [key, value] : settings) {
      find_train_option(key)->set(c, value);
      given.from_flag(key, "--" + key);
    }
  };
}
}  // namespace

TEST_CASE("every preset sets valid table settings and names itself", "[config][presets]") {
  REQUIRE(train_presets().size() >= 2);
  CHECK(train_preset_names() == "cpu, sagan32, sagan128");
  for (const TrainPreset& p : train_presets()) {
    INFO(p.name);
    CHECK(!p.summary.empty());
    TrainConfig c;
    apply_preset(c, p.name);
    CHECK(c.preset == p.name);
    CHECK_NOTHROW(c.validate());
    for (const auto& [key, value] : p.settings) {
      INFO(key);
      const TrainOption* o = find_train_option(key);
      REQUIRE(o != nullptr);
      CHECK(o->get(c) == value);
    }
  }
  // sagan32 is the defaults, spelled out.
  TrainConfig d, s;
  apply_preset(s, "sagan32");
  s.preset = "";
  CHECK(s.to_json() == d.to_json());
  TrainConfig cpu;
  apply_preset(cpu, "cpu");
  CHECK((cpu.model.ch == 16 && cpu.batch_size == 32 && cpu.steps == 5000));
  REQUIRE_THROWS_WITH(apply_preset(cpu, "fast"), "preset: 'fast' is not one of cpu, sagan32, sagan128");
}

TEST_CASE("settings layer: defaults, preset, config file, command line", "[config][presets]") {
  TempDir dir;
  const std::string file = dir / "my.toml";
  io::write_file_atomic(file, "preset = \"cpu\"\nsteps = 7\n");
  ConfigSources given;
  // The file's preset under the file's settings, the command line over both.
  TrainConfig c = layered_settings(ConfigFileSettings::read(file), cli({{"batch_size", int64_t{8}}}), "", given);
  CHECK(c.preset == "cpu");
  CHECK(c.model.ch == 16);          // the preset's
  CHECK(c.steps == 7);              // the file's
  CHECK(c.batch_size == 8);         // the command line's
  CHECK(c.ema_start == 500);        // the preset's
  CHECK(!given.given("model.ch"));  // a preset's values are defaults, not given
  CHECK(given.where("steps") == file + ": steps");

  // A preset on the command line wins over the file's; the fallback only applies when none is named.
  given = {};
  c = layered_settings(ConfigFileSettings::read(file), cli({{"preset", std::string("sagan32")}}), "cpu", given);
  CHECK((c.preset == "sagan32" && c.model.ch == 64 && c.steps == 7));
  given = {};
  c = layered_settings({}, cli({}), "cpu", given);
  CHECK((c.preset == "cpu" && c.model.ch == 16));
  given = {};
  c = layered_settings({}, cli({{"model.ch", int64_t{32}}}), "cpu", given);
  CHECK((c.preset == "cpu" && c.model.ch == 32));
  // Messages name a preset's value as the preset's; a value given is named as given.
  CHECK(given.name("log_every") == "--log-every of the cpu preset");
  CHECK(given.name("model.ch") == "--model.ch");
  c.fd_every = 10;
  REQUIRE_THROWS_WITH(
      c.validate(given),
      "--fd-every: 10 is not a multiple of --log-every of the cpu preset (25): FD is logged on log rows");
  CHECK(named_preset(ConfigFileSettings::read(file), cli({})) == "cpu");
  CHECK(named_preset({}, cli({})).empty());

  // An unknown preset is named where it was given.
  io::write_file_atomic(dir / "bad.toml", "preset = \"fast\"\n");
  REQUIRE_THROWS_WITH(layered_settings(ConfigFileSettings::read(dir / "bad.toml"), cli({}), "", given),
                      dir / "bad.toml" + ": preset: 'fast' is not one of cpu, sagan32, sagan128");
  REQUIRE_THROWS_WITH(layered_settings({}, cli({{"preset", std::string("fast")}}), "", given),
                      "--preset: 'fast' is not one of cpu, sagan32, sagan128");

  // The file is read once: layering again works from what was read, though
  // the file has changed since (sagan-train layers twice, for its fallback).
  const ConfigFileSettings read = ConfigFileSettings::read(file);
  io::write_file_atomic(file, "preset = \"sagan128\"\nsteps = 9\n");
  given = {};
  c = layered_settings(read, cli({}), "", given);
  CHECK((c.preset == "cpu" && c.steps == 7 && given.where("steps") == file + ": steps"));
  REQUIRE(read.find("steps") != nullptr);
  CHECK(std::get<int64_t>(*read.find("steps")) == 7);
  CHECK(read.find("batch_size") == nullptr);
  CHECK(ConfigFileSettings::read("").values.empty());
}
