// sagan-train: trains SAGAN. With no arguments: class-conditional SAGAN-32
// on Fashion-MNIST from Debian's dataset-fashion-mnist package. The training
// settings are the table in models/train_options.cpp (tools/train_cli.h).
#include <CLI/CLI.hpp>

#include "models/train_run.h"
#include "tools/cli_common.h"
#include "tools/train_cli.h"

using namespace sagan;

namespace {

struct TrainToolOptions {
  std::string config_file;   // settings file, under the options given
  std::string write_config;  // write the settings there and stop
  std::string resume_dir;
  bool quiet = false;
  cli::TrainSettingsCli settings;
};

void add_options(CLI::App& app, TrainToolOptions& o) {
  app.get_formatter()->column_width(36);
  app.add_option("--config", o.config_file,
                 "Settings file (.json or .toml; keys as in a run's config.json); options given win")
      ->type_name("FILE");
  app.add_option("--write-config", o.write_config, "Write the settings to FILE (.json or .toml) and exit")
      ->type_name("FILE");
  app.add_option("--resume", o.resume_dir,
                 "Continue this run from its newest checkpoint; options given with it: docs/checkpoints.md")
      ->type_name("DIR");
  o.settings.add_to(app);
  o.settings.group("Output")->add_flag("--quiet", o.quiet, "No progress output");
}

int run(const TrainToolOptions& o) {
  TrainConfig cfg;
  RunOptions ro;
  if (!o.config_file.empty()) read_config_file(o.config_file, cfg, &ro.given);
  o.settings.apply(cfg, ro.given);
  if (!o.write_config.empty()) {
    SAGAN_CHECK(o.resume_dir.empty(), "--write-config: not with --resume (the run's settings are its config.json)");
    cfg.validate(ro.given);
    write_config_file(o.write_config, cfg);
    fmt::print("sagan-train: wrote {}\n", o.write_config);
    return 0;
  }
  ro.resume_dir = o.resume_dir;
  ro.progress = !o.quiet;
  run_training(cfg, ro);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sagan-train: train a Self-Attention GAN (hinge loss, TTUR Adam, EMA generator).\n"
      "With no options it trains class-conditional SAGAN-32 on Fashion-MNIST\n"
      "(Debian package dataset-fashion-mnist) and writes a run directory under runs/.\n"
      "Ctrl-C stops after the current step and saves a checkpoint; --resume continues exactly."};
  TrainToolOptions o;
  add_options(app, o);
  return cli::parse_and_run("sagan-train", app, argc, argv, [&] { return run(o); });
}
