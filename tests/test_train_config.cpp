// TrainConfig and its table (models/train_options.cpp): strict JSON and TOML
// reading (unknown keys, wrong types, extensions, missing files), messages
// naming the file and the key, round trips, and --resume's rules.
#include <catch2/catch.hpp>
#include <fstream>
#include <fmt/core.h>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/text.h"
#include "sagan/core/warning.h"
#include "sagan/models/quality/evaluate.h"
#include "sagan/models/train_options.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using sagan::testing::TempDir;

namespace {

// A config where every setting differs from its default.
TrainConfig unusual_config() {
  TrainConfig c;
  c.preset = "sagan128";
  c.model.resolution = 64;
  c.model.ch = 16;
  c.model.g_ch = 32;
  c.model.d_ch = 8;
  c.model.z_dim = 96;
  c.model.num_classes = 7;
  c.model.image_channels = 1;
  c.model.g_attn_res = std::vector<int64_t>{16, 32};
  c.model.d_attn_res = std::vector<int64_t>{};
  c.model.pooled_attention = false;
  c.unconditional = true;
  c.dataset = "folder";
  c.data_path = "/data/\"quoted\" back\\slash ünï\tcode";
  c.hflip = true;
  c.channels = "1";
  c.resize = "pad";
  c.batch_size = 17;
  c.accumulate = 3;
  c.steps = 1234;
  c.n_dis = 2;
  c.adam_g.lr = 0.30000000000000004;  // needs 17 digits
  c.adam_d.lr = 3e-4;
  c.adam_g.beta1 = c.adam_d.beta1 = 0.5;
  c.adam_g.beta2 = c.adam_d.beta2 = 0.999;
  c.adam_g.eps = c.adam_d.eps = 1e-6;
  c.ema_decay = 0.999;
  c.ema_start = 0;
  c.grad_clip = 10.0;  // integral: TOML must still write a float
  c.diffaug = "translation,cutout";
  c.on_nan = "skip";
  c.max_nan_skips = 3;
  c.seed = 42;
  c.device = "cuda:1";
  c.world_size = 4;
  c.sync_bn = true;
  c.deterministic = false;
  c.cuda_graph = true;
  c.precision = "bf16";
  c.check_sync_every = 7;
  c.comm = "nccl";
  c.dist_timeout = 90;
  c.run_dir = "runs/x";
  c.log_every = 5;
  c.sample_every = 50;
  c.checkpoint_every = 100;
  c.keep_checkpoints = 2;
  c.sample_per_class = 3;
  c.fd_every = 20;
  c.fd_samples = 300;
  c.fd_features = "inception";
  c.fd_weights = "/w/fid.safetensors";
  return c;
}

// Every setting of a and b, compared through the table; with
// `but_data_set`, those the data set or the launch sets aside (a TOML file
// holds them commented out: a value there would be ignored).
void require_same_settings(const TrainConfig& a, const TrainConfig& b, bool but_data_set = false) {
  for (const TrainOption& o : train_options()) {
    if (but_data_set && o.from_data_set) continue;
    INFO(o.key);
    CHECK(o.get(a) == o.get(b));
  }
}

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  io::write_file_atomic(dir / name, text);
  return dir / name;
}

// The error a file's settings give, read and then validated.
std::string file_error(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = write(dir, name, text);
  try {
    TrainConfig c;
    ConfigSources s;
    read_config_file(path, c, &s);
    c.validate(s);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("the table has one entry per key of config.json", "[config]") {
  // config.json and checkpoint metadata are a file format: these keys stay.
  const std::vector<std::string> keys = {"accumulate",
                                         "adam_eps",
                                         "batch_size",
                                         "beta1",
                                         "beta2",
                                         "channels",
                                         "check_sync_every",
                                         "checkpoint_every",
                                         "comm",
                                         "cuda_graph",
                                         "data_path",
                                         "dataset",
                                         "deterministic",
                                         "device",
                                         "diffaug",
                                         "dist_timeout",
                                         "ema_decay",
                                         "ema_start",
                                         "fd_every",
                                         "fd_features",
                                         "fd_samples",
                                         "fd_weights",
                                         "grad_clip",
                                         "hflip",
                                         "keep_checkpoints",
                                         "log_every",
                                         "lr_d",
                                         "lr_g",
                                         "max_nan_skips",
                                         "model.ch",
                                         "model.d_attn_res",
                                         "model.d_ch",
                                         "model.g_attn_res",
                                         "model.g_ch",
                                         "model.image_channels",
                                         "model.num_classes",
                                         "model.pooled_attention",
                                         "model.resolution",
                                         "model.z_dim",
                                         "n_dis",
                                         "on_nan",
                                         "precision",
                                         "preset",
                                         "resize",
                                         "run_dir",
                                         "sample_every",
                                         "sample_per_class",
                                         "seed",
                                         "steps",
                                         "sync_bn",
                                         "unconditional",
                                         "world_size"};
  std::vector<std::string> table;
  for (const TrainOption& o : train_options()) table.push_back(o.key);
  std::sort(table.begin(), table.end());
  CHECK(table == keys);
  for (const TrainOption& o : train_options()) {
    INFO(o.key);
    CHECK(!o.help.empty());
    CHECK(o.get);
    CHECK(o.set);
    CHECK(o.get(TrainConfig{}).index() == static_cast<size_t>(o.kind));
  }
}

TEST_CASE("config files round-trip every setting through JSON and TOML", "[config]") {
  const TrainConfig c = unusual_config();
  for (const TrainOption& o : train_options()) {
    INFO(o.key << ": give it a value other than its default in unusual_config()");
    CHECK(o.get(c) != o.get(TrainConfig{}));
  }
  const TrainConfig j = TrainConfig::from_json(c.to_json(), "c.json");
  require_same_settings(c, j);
  CHECK(j.to_json() == c.to_json());
  const TrainConfig t = TrainConfig::from_toml(c.to_toml(), "c.toml");
  require_same_settings(c, t, /*but_data_set=*/true);
  CHECK(c.to_toml().find("\n# world_size = 4  # set when the run starts; a value here is ignored\n") !=
        std::string::npos);
  TrainConfig t_with_data_set = t;
  t_with_data_set.world_size = c.world_size;
  t_with_data_set.model.num_classes = c.model.num_classes;
  t_with_data_set.model.image_channels = c.model.image_channels;
  CHECK(t_with_data_set.to_toml() == c.to_toml());
  // Defaults too, and the written attention default reads back as itself.
  require_same_settings(TrainConfig{}, TrainConfig::from_toml(TrainConfig{}.to_toml(), "d.toml"), true);
  CHECK(TrainConfig::from_json(TrainConfig{}.to_json(), "d.json").to_json() == TrainConfig{}.to_json());

  // Through files, by extension; a seed TOML cannot hold is refused there only.
  TempDir dir;
  TrainConfig big = c;
  big.seed = 18446744073709551615ull;
  write_config_file(dir / "big.json", big);
  TrainConfig back;
  read_config_file(dir / "big.json", back, nullptr);
  CHECK(back.seed == big.seed);
  REQUIRE_THROWS_WITH(write_config_file(dir / "big.toml", big),
                      Catch::Contains("seed: 18446744073709551615 does not fit a TOML integer"));
  CHECK(!std::filesystem::exists(dir / "big.toml"));
}

TEST_CASE("ch sets both widths; g_ch and d_ch given with it win; configs with only ch keep their meaning", "[config]") {
  TempDir dir;
  auto read = [&](const std::string& name, const std::string& text) {
    TrainConfig c;
    read_config_file(write(dir, name, text), c, nullptr);
    return c;
  };
  // A config.json from before g_ch / d_ch: ch is both; written back resolved.
  TrainConfig old = read("old.json", R"({"model": {"ch": 24}})");
  CHECK(old.model.resolved_g_ch() == 24);
  CHECK(old.model.resolved_d_ch() == 24);
  CHECK(old.model.g_widths()[0] == 96);
  CHECK(old.model.d_blocks()[0].out == 48);
  CHECK_THAT(old.to_json(), Catch::Contains("\"g_ch\": 24") && Catch::Contains("\"d_ch\": 24"));
  // g_ch / d_ch given with ch win, whatever the order in the file.
  for (const char* text : {"[model]\ng_ch = 32\nch = 16\n", "[model]\nch = 16\ng_ch = 32\n"}) {
    INFO(text);
    TrainConfig c = read("w.toml", text);
    CHECK(c.model.resolved_g_ch() == 32);
    CHECK(c.model.resolved_d_ch() == 16);
    CHECK(c.model.g_widths() == std::vector<int64_t>{128, 128, 128, 128});
    CHECK(c.model.d_blocks()[0].out == 32);
  }
  // ch given later (the command line over a file) sets both again.
  TrainConfig c = read("w.toml", "[model]\ng_ch = 32\nd_ch = 8\n");
  find_train_option("model.ch")->set(c, int64_t{40});
  CHECK(c.model.resolved_g_ch() == 40);
  CHECK(c.model.resolved_d_ch() == 40);
  // Checked as the other widths, under the key given.
  CHECK_THAT(file_error(dir, "n.toml", "[model]\nd_ch = -8\n"),
             Catch::EndsWith("n.toml: model.d_ch: must be positive (0: ch), got -8"));
  CHECK_THAT(file_error(dir, "n.toml", "[model]\nd_ch = 3\n"),
             Catch::EndsWith("--d-attn: 16: self-attention needs channels divisible by 8, the block has 6 (d_ch = 3)"));
}

TEST_CASE("a written settings file leaves out widths that only follow ch, so an edit of ch takes", "[config]") {
  TempDir dir;
  for (const char* name : {"edit.toml", "edit.json"}) {
    INFO(name);
    const std::string path = dir / name;
    write_config_file(path, TrainConfig{});  // g_ch and d_ch follow ch (64)
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find(std::string(name).ends_with(".json") ? "\"ch\": 64" : "\nch = 64");
    REQUIRE(at != std::string::npos);
    text.replace(text.find("64", at), 2, "8");  // the user edits ch only
    TrainConfig c;
    read_config_file(write(dir, name, text), c, nullptr);
    CHECK(c.model.resolved_g_ch() == 8);
    CHECK(c.model.resolved_d_ch() == 8);
  }
  // Set apart, they are written and read back.
  TrainConfig apart;
  apart.model.g_ch = 32;
  write_config_file(dir / "apart.toml", apart);
  TrainConfig back;
  read_config_file(dir / "apart.toml", back, nullptr);
  CHECK(back.model.resolved_g_ch() == 32);
  CHECK(back.model.resolved_d_ch() == 64);
  // A run's record (config.json, checkpoints) spells every width out.
  CHECK_THAT(TrainConfig{}.to_json(), Catch::Contains("\"g_ch\": 64") && Catch::Contains("\"d_ch\": 64"));
}

TEST_CASE("config files refuse unknown keys, naming the file and suggesting the key", "[config]") {
  TempDir dir;
  CHECK(file_error(dir, "t.toml", "batchsize_typo = 64\n") ==
        dir / "t.toml" + ": batchsize_typo: unknown key (did you mean batch_size?)");
  CHECK_THAT(file_error(dir, "t.json", R"({"batch_sise": 4})"),
             Catch::EndsWith("t.json: batch_sise: unknown key (did you mean batch_size?)"));
  CHECK_THAT(file_error(dir, "t.json", R"({"model": {"chh": 4}})"),
             Catch::EndsWith("t.json: model.chh: unknown key (did you mean model.ch?)"));
  // The option's spelling, or a model setting at the top level.
  CHECK_THAT(file_error(dir, "t.toml", "batch-size = 4\n"), Catch::Contains("(did you mean batch_size?)"));
  CHECK_THAT(file_error(dir, "t.toml", "ch = 4\n"), Catch::Contains("ch: unknown key (did you mean model.ch?)"));
  CHECK_THAT(file_error(dir, "t.toml", "[model]\nchannels_x = 4\n"), Catch::Contains("model.channels_x: unknown key"));
  CHECK_THAT(file_error(dir, "t.toml", "zzz = 1\n"),
             Catch::EndsWith("zzz: unknown key; sagan-train --write-config FILE lists every key"));
  // A dotted name is a path, never one key.
  CHECK_THAT(file_error(dir, "t.json", R"({"model.ch": 4})"),
             Catch::Contains("model.ch: a key with a dot in it is one name, not a setting of a table; write it "
                             "inside its table ({\"model\": {\"ch\": ...}} in JSON"));
  CHECK_THAT(file_error(dir, "t.json", R"({"model.chh": 4})"), Catch::Contains("model.chh: unknown key"));
  // Keys given twice, named with their table.
  CHECK_THAT(file_error(dir, "t.json", R"({"steps": 4, "steps": 5})"),
             Catch::EndsWith("t.json: steps: the key is given twice"));
  CHECK_THAT(
      file_error(dir, "t.json", R"({"model": {"ch": 4, "z_dim": 8}, "x": {"y": 1}, "model2": {"ch": 1, "ch": 2}})"),
      Catch::EndsWith("t.json: model2.ch: the key is given twice"));
  CHECK_THAT(file_error(dir, "t.json", R"({"steps": null})"), Catch::EndsWith("steps: expected an integer, got null"));
  CHECK_THAT(file_error(dir, "t.toml", "steps = 4\nsteps = 5\n"), Catch::Contains("t.toml:2:"));
}

TEST_CASE("config files refuse values of the wrong type", "[config]") {
  TempDir dir;
  CHECK_THAT(file_error(dir, "t.json", R"({"batch_size": "64"})"),
             Catch::EndsWith("t.json: batch_size: expected an integer, got string \"64\""));
  CHECK_THAT(file_error(dir, "t.json", R"({"batch_size": 64.5})"),
             Catch::EndsWith("batch_size: expected an integer, got float 64.5"));
  CHECK_THAT(file_error(dir, "t.json", R"({"batch_size": true})"), Catch::Contains("expected an integer, got boolean"));
  CHECK_THAT(file_error(dir, "t.json", R"({"hflip": 1})"), Catch::EndsWith("hflip: expected a boolean, got integer 1"));
  CHECK_THAT(file_error(dir, "t.json", R"({"lr_d": "1e-4"})"), Catch::Contains("lr_d: expected a number"));
  CHECK_THAT(file_error(dir, "t.json", R"({"seed": -1})"),
             Catch::EndsWith("seed: expected a non-negative integer, got integer -1"));
  CHECK_THAT(file_error(dir, "t.json", R"({"model": 3})"),
             Catch::EndsWith("t.json: model: expected a table of settings (model.KEY = ...), got integer 3"));
  CHECK_THAT(file_error(dir, "t.json", R"({"model": {"g_attn_res": [16, "32"]}})"),
             Catch::Contains("model.g_attn_res: expected a list of integers"));
  CHECK_THAT(file_error(dir, "t.json", R"([1, 2])"), Catch::Contains("expected a JSON object of settings"));
  CHECK_THAT(file_error(dir, "t.json", R"({"steps": 4,})"), Catch::Contains("t.json: not valid JSON"));
  CHECK_THAT(file_error(dir, "t.toml", "batch_size = \"64\"\n"),
             Catch::EndsWith("t.toml: batch_size: expected an integer, got string \"64\""));
  CHECK_THAT(file_error(dir, "t.toml", "[model]\nch = 4.0\n"),
             Catch::Contains("model.ch: expected an integer, got float"));
  CHECK_THAT(file_error(dir, "t.toml", "lr_d = nan\n"), Catch::Contains("lr_d: expected a finite number, got nan"));
  CHECK_THAT(file_error(dir, "t.toml", "dataset = 1979-05-27\n"),
             Catch::Contains("dataset: dates and times are not settings"));
  CHECK_THAT(file_error(dir, "t.toml", "steps = \n"),
             Catch::Contains("t.toml:1:") && Catch::Contains("not valid TOML"));
}

TEST_CASE("config files: the extension picks the format in any case, others are refused, a missing file is named",
          "[config]") {
  TempDir dir;
  // neg.JSON once went to the TOML reader, which ignored it and trained with batch 64.
  CHECK(file_error(dir, "neg.JSON", R"({"batch_size": -4})") ==
        dir / "neg.JSON" + ": batch_size: must be positive, got -4");
  CHECK(file_error(dir, "my.Toml", "batch_size = -4\n") == dir / "my.Toml" + ": batch_size: must be positive, got -4");
  CHECK_THAT(file_error(dir, "c.yaml", "batch_size: 4\n"),
             Catch::EndsWith("c.yaml: a config file must end in .json or .toml, not '.yaml'"));
  CHECK_THAT(file_error(dir, "config", "{}"),
             Catch::EndsWith("config: a config file must end in .json or .toml, not ''"));
  TrainConfig c;
  REQUIRE_THROWS_WITH(read_config_file(dir / "missing.toml", c, nullptr),
                      Catch::EndsWith("missing.toml: no such config file"));
  std::filesystem::create_directory(dir / "d.json");
  REQUIRE_THROWS_WITH(read_config_file(dir / "d.json", c, nullptr), Catch::Contains("is a directory"));
  REQUIRE_THROWS_WITH(write_config_file(dir / "out.yml", c), Catch::Contains("must end in .json or .toml"));
}

TEST_CASE("fd_samples is checked with FD off too, so that a saved value cannot stop a later resume", "[config]") {
  TrainConfig c;
  c.fd_every = 0;
  c.fd_samples = -5;
  const auto p = train_config_problem(c, [](const std::string& key) { return key; });
  REQUIRE(p.has_value());
  CHECK(p->key + ": " + p->text == "fd_samples: must be >= 2, got -5");
}

TEST_CASE("FD features auto need Inception weights exactly where the FD monitor would pick Inception", "[config]") {
  TrainConfig c;
  c.fd_every = c.log_every;
  const auto name = [](const std::string& key) { return key; };
  const auto problem = [&] {
    const auto p = train_config_problem(c, name);
    return p ? p->key + ": " + p->text : std::string();
  };
  c.dataset = "fashion-mnist";
  CHECK(problem().empty());
  c.dataset = "cifar10";
  c.data_path = "/cifar";
  CHECK_THAT(problem(), Catch::StartsWith("fd_every: FD on cifar10 uses Inception features"));
  c.dataset = "folder";
  c.data_path = "/images";
  c.channels = "1";  // resolve_features picks fmnist for 1-channel data
  CHECK(problem().empty());
  c.channels = "auto";  // known once the images are read: the monitor decides
  CHECK(problem().empty());
  c.channels = "3";
  CHECK_THAT(problem(), Catch::StartsWith("fd_every: FD on folder uses Inception features"));
  c.fd_weights = "/w/fid.safetensors";
  CHECK(problem().empty());
  CHECK(quality::resolve_features("auto", "folder", 1) == "fmnist");
  CHECK(quality::resolve_features("auto", "folder", 3) == "inception");
}

TEST_CASE("invalid values are reported under their file and key, or their option", "[config]") {
  TempDir dir;
  CHECK_THAT(file_error(dir, "m.toml", "[model]\nch = -1\n"),
             Catch::EndsWith("m.toml: model.ch: must be positive, got -1"));
  CHECK_THAT(file_error(dir, "m.toml", "[model]\nresolution = 48\n"),
             Catch::EndsWith("m.toml: model.resolution: must be a power of two >= 32, got 48"));
  CHECK_THAT(file_error(dir, "m.toml", "beta2 = 1.0\n"), Catch::EndsWith("m.toml: beta2: must be in [0, 1), got 1"));
  // Widths no machine holds: refused before any network is built (it used to
  // fill the host's memory for a minute, then end in std::bad_alloc).
  CHECK_THAT(file_error(dir, "m.toml", "[model]\nch = 100000\n"),
             Catch::Contains("m.toml: model.ch: 100000 gives the networks about 1.18e+13 weights") &&
                 Catch::Contains("beyond any machine"));
  CHECK_THAT(file_error(dir, "m.toml", "[model]\ng_ch = 5000000000000000\n"),
             Catch::EndsWith("m.toml: model.g_ch: 5000000000000000 is beyond any machine"));
  CHECK_THAT(file_error(dir, "m.toml", "[model]\nch = 16\nd_ch = 40000\n"),
             Catch::Contains("m.toml: model.d_ch: 40000 gives the networks"));
  CHECK_THAT(file_error(dir, "m.toml", "[model]\nch = 10000\n"), !Catch::Contains("model.ch"));
  CHECK_THAT(file_error(dir, "m.toml", "dataset = \"folder\"\n"),
             Catch::EndsWith("m.toml: dataset: folder needs --data PATH (a folder of class sub-folders)"));
  CHECK_THAT(file_error(dir, "m.toml", "fd_every = 15\n"),
             Catch::EndsWith("m.toml: fd_every: 15 is not a multiple of --log-every (10): FD is logged on log rows"));
  CHECK_THAT(file_error(dir, "m.toml", "fd_every = 15\nlog_every = 10\n"),
             Catch::Contains("15 is not a multiple of log_every (10)"));
  CHECK_THAT(file_error(dir, "m.toml", "channels = \"3\"\n"),
             Catch::EndsWith("m.toml: channels: fashion-mnist images have 1 channel(s); channels 3 is for --dataset "
                             "folder"));
  CHECK_THAT(file_error(dir, "m.toml", "channels = 1\n"),
             Catch::EndsWith("channels: expected a string, got integer 1"));
  CHECK_THAT(file_error(dir, "m.toml", "diffaug = \"color,flip\"\n"),
             Catch::EndsWith("m.toml: diffaug: 'flip' is not one of color, translation, cutout (comma-separated), or "
                             "none; got 'color,flip'"));
  CHECK_THAT(file_error(dir, "m.toml", "resize = \"bicubic\"\n"),
             Catch::EndsWith("m.toml: resize: 'bicubic' is not one of bilinear, nearest, pad"));
  CHECK_THAT(file_error(dir, "m.toml", "device = \"gpu\"\n"),
             Catch::EndsWith("m.toml: device: 'gpu' is not a device (auto, cpu, cuda or cuda:N)"));

  // Given as options (sagan-train records them so), or defaults: the option.
  TrainConfig c;
  ConfigSources s;
  c.batch_size = 0;
  s.from_flag("batch_size", "--batch-size");
  REQUIRE_THROWS_WITH(c.validate(s), "--batch-size: must be positive, got 0");
  REQUIRE_THROWS_WITH(c.validate(), "--batch-size: must be positive, got 0");
  c = TrainConfig{};
  c.model.ch = 3;  // G widths of 12 cannot hold whole C/8 attention queries
  REQUIRE_THROWS_WITH(c.validate(), Catch::StartsWith("--g-attn: 16: self-attention needs channels divisible by 8"));
  c = TrainConfig{};
  c.model.num_classes = -2;  // no option: the key
  REQUIRE_THROWS_WITH(c.validate(), Catch::StartsWith("model.num_classes: must be >= 0"));
  c = TrainConfig{};
  c.adam_d.beta1 = 0.5;  // only code can split the shared settings; a file could not hold it
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("adam_g and adam_d differ"));
}

TEST_CASE("settings a program set in code are named by their TrainConfig member and option", "[config]") {
  const ConfigSources code = ConfigSources::code();
  TrainConfig c;
  c.adam_g.lr = -1;
  REQUIRE_THROWS_WITH(c.validate(code), "TrainConfig.adam_g.lr (--lr-g): must be positive, got -1");
  c = TrainConfig{};
  c.adam_g.beta2 = c.adam_d.beta2 = 1.0;
  REQUIRE_THROWS_WITH(c.validate(code),
                      "TrainConfig.adam_g.beta2 and adam_d.beta2 (--beta2): must be in [0, 1), got 1");
  c = TrainConfig{};
  c.model.num_classes = -2;  // no option: the member alone
  REQUIRE_THROWS_WITH(c.validate(code), Catch::StartsWith("TrainConfig.model.num_classes: must be >= 0"));
  c = TrainConfig{};
  c.fd_every = 15;  // the other setting a message mentions is named alike
  REQUIRE_THROWS_WITH(c.validate(code),
                      "TrainConfig.fd_every (--fd-every): 15 is not a multiple of "
                      "TrainConfig.log_every (--log-every) (10): FD is logged on log rows");
  // Listed from code: named so even in sources of options, and applied on a resume.
  ConfigSources given;
  given.from_code("steps");
  TrainConfig run, more;
  more.steps = run.steps + 5;
  const std::vector<ConfigChange> ch = apply_on_resume(run, "r/config.json", more, given);
  REQUIRE(ch.size() == 1);
  CHECK(ch[0].where == "TrainConfig.steps (--steps)");
  CHECK(run.steps == more.steps);
  REQUIRE_THROWS_WITH(given.from_code("stepz"), Catch::Contains("'stepz' is not a setting"));
  // A member a program set, but did not list, is not applied, with a
  // warning rather than silently; one at its default or at the run's value
  // is not a change.
  std::vector<std::string> warnings;
  const WarningHandler before_handler = set_warning_handler([&](const std::string& text) { warnings.push_back(text); });
  ConfigSources in_code = ConfigSources::code();
  TrainConfig unlisted;
  unlisted.steps = run.steps + 1;
  unlisted.adam_g.lr = 1e-3;
  unlisted.log_every = run.log_every;
  unlisted.batch_size = 16;
  TrainConfig before = run;
  CHECK(apply_on_resume(run, "r/config.json", unlisted, in_code).empty());
  require_same_settings(run, before);
  CHECK(warnings == std::vector<std::string>{
                        fmt::format("resuming r/config.json: TrainConfig.steps (--steps) = {} (the run has {}), "
                                    "TrainConfig.adam_g.lr (--lr-g) = 0.001 (the run has 0.0001) not applied: a "
                                    "resume applies only the settings RunOptions::given lists "
                                    "(given.from_code(\"steps\"))",
                                    run.steps + 1, run.steps),
                        "resuming r/config.json: TrainConfig.batch_size (--batch-size) = 16 (the run has 64) not "
                        "applied: a resume keeps the run's (start a new run to change them)"});
  warnings.clear();
  in_code.from_code("steps");
  in_code.from_code("lr_g");
  unlisted.batch_size = run.batch_size;
  CHECK(apply_on_resume(run, "r/config.json", unlisted, in_code).size() == 2);
  CHECK(run.adam_g.lr == 1e-3);
  CHECK(warnings.empty());
  set_warning_handler(before_handler);
  CHECK_NOTHROW(apply_on_resume(run, "r/config.json", TrainConfig{}, ConfigSources::code()));
}

TEST_CASE("apply_on_resume applies what may change and refuses what the run fixes", "[config][resume]") {
  TrainConfig saved;
  saved.model.ch = 64;
  saved.model.num_classes = 10;
  saved.model.image_channels = 1;
  saved.steps = 100;
  TrainConfig given;  // what sagan-train --resume RUN ... would hand over
  ConfigSources src;

  // Nothing given: nothing changes.
  TrainConfig run = saved;
  CHECK(apply_on_resume(run, "r/config.json", given, src).empty());
  require_same_settings(run, saved);

  // Learning rates and steps are applied and reported.
  given.steps = 200;
  given.adam_d.lr = 1e-4;
  src.from_flag("steps", "--steps");
  src.from_flag("lr_d", "--lr-d");
  std::vector<ConfigChange> ch = apply_on_resume(run, "r/config.json", given, src);
  REQUIRE(ch.size() == 2);
  CHECK((ch[0].key == "steps" && ch[0].from == "100" && ch[0].to == "200" && ch[0].where == "--steps"));
  CHECK((ch[1].key == "lr_d" && ch[1].from == "0.0004" && ch[1].to == "0.0001" && ch[1].where == "--lr-d"));
  CHECK(run.steps == 200);
  CHECK(run.adam_d.lr == 1e-4);
  CHECK(run.adam_g.lr == saved.adam_g.lr);

  // An architecture setting with the run's own value is fine; another is refused.
  given.model.ch = 64;
  src.from_flag("model.ch", "--ch");
  CHECK_NOTHROW(apply_on_resume(run, "r/config.json", given, src));
  given.model.ch = 32;
  run = saved;
  REQUIRE_THROWS_WITH(apply_on_resume(run, "r/config.json", given, src),
                      "--ch: 32 given with --resume, but the run has model.ch = 64 (r/config.json): the checkpoint "
                      "holds networks of the run's architecture; start a new run to change it");
  given.model.ch = 64;
  // Widths compare resolved: the run's ch is its g_ch.
  given.model.g_ch = 64;
  src.from_flag("model.g_ch", "--g-ch");
  CHECK_NOTHROW(apply_on_resume(run, "r/config.json", given, src));
  given.model.g_ch = 128;
  REQUIRE_THROWS_WITH(apply_on_resume(run, "r/config.json", given, src),
                      Catch::StartsWith("--g-ch: 128 given with --resume, but the run has model.g_ch = 64"));
  given.model.g_ch = 0;
  given.batch_size = 32;
  src.from_file("batch_size", "more.toml");
  REQUIRE_THROWS_WITH(
      apply_on_resume(run, "r/config.json", given, src),
      Catch::StartsWith("more.toml: batch_size: 32 given with --resume, but the run has batch_size = 64"));
  given.batch_size = 64;
  // Settings taken from the data set are not compared (a config file may hold the defaults).
  src.from_file("model.image_channels", "more.toml");
  CHECK_NOTHROW(apply_on_resume(run, "r/config.json", given, src));
  CHECK(run.model.image_channels == 1);
  // What a --write-config file holds for settings the run resolved at its
  // start (channels auto, run_dir ""), and an attention list in another
  // order: the run's own, not changes. Another value is still refused.
  run = saved;
  run.channels = "1";
  run.run_dir = "runs/r";
  run.model.g_attn_res = std::vector<int64_t>{8, 16};
  given.channels = "auto";
  given.run_dir = "";
  given.model.g_attn_res = std::vector<int64_t>{16, 8};
  src.from_file("channels", "w.toml");
  src.from_file("run_dir", "w.toml");
  src.from_file("model.g_attn_res", "w.toml");
  CHECK(apply_on_resume(run, "r/config.json", given, src).size() == 2);  // steps and lr_d, as above
  given.channels = "3";
  REQUIRE_THROWS_WITH(apply_on_resume(run, "r/config.json", given, src),
                      Catch::StartsWith("w.toml: channels: 3 given with --resume, but the run has channels = 1"));
  given.channels = "auto";
  given.model.g_attn_res = std::vector<int64_t>{16};
  REQUIRE_THROWS_WITH(apply_on_resume(run, "r/config.json", given, src),
                      Catch::StartsWith("w.toml: model.g_attn_res: [16] given with --resume, but the run has "
                                        "model.g_attn_res = [8, 16]"));
  // Every entry either applies or says why not.
  for (const TrainOption& o : train_options()) {
    INFO(o.key);
    CHECK((o.resume_applies || o.from_data_set || !o.resume_why.empty()));
  }
}

TEST_CASE("a TOML date or time is refused naming the file and the key", "[config]") {
  // Found by fuzz_config_toml (corpus/config_toml/regress_date_value_without_file_name):
  // the message named the key only.
  REQUIRE_THROWS_WITH(TrainConfig::from_toml("da = 1979-05-27T07:32:00Z\n", "my.toml"),
                      Catch::StartsWith("my.toml: da: dates and times are not settings"));
  REQUIRE_THROWS_WITH(TrainConfig::from_toml("[model]\nch = 07:32:00\n", "my.toml"),
                      Catch::StartsWith("my.toml: model.ch: dates and times"));
}

TEST_CASE("text settings must be UTF-8, which config.json holds", "[config]") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("runs/café/日本/🙂"));
  CHECK_FALSE(valid_utf8("caf\xe9"));           // Latin-1
  CHECK_FALSE(valid_utf8("\xc3"));              // cut short
  CHECK_FALSE(valid_utf8("\x80"));              // a stray continuation byte
  CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  TrainConfig c;
  c.data_path = "/data/caf\xe9";
  ConfigSources given;
  given.from_flag("data_path", "--data");
  REQUIRE_THROWS_WITH(c.validate(given), Catch::StartsWith("--data: '/data/caf\xe9' is not UTF-8 text"));
  c.data_path = "/data/café";
  CHECK_NOTHROW(c.validate(given));
  CHECK_NOTHROW(TrainConfig::from_json(c.to_json(), "x.json"));
}
