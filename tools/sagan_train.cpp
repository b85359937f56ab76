// sagan-train: trains SAGAN. With no arguments: class-conditional SAGAN-32
// on Fashion-MNIST from Debian's dataset-fashion-mnist package (the small cpu
// preset when no GPU is found). The training settings are the table in
// models/train_options.cpp (tools/train_cli.h), layered over a preset
// (models/train_presets.h).
#include <CLI/CLI.hpp>

#include <algorithm>

#include "sagan/core/backend.h"
#include "sagan/core/env_setting.h"
#include "sagan/dist/agree.h"
#include "sagan/dist/launch.h"
#include "sagan/models/train_options.h"
#include "sagan/models/train_presets.h"
#include "sagan/models/train_run.h"
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
      ->type_name("FILE")
      ->check(cli::not_empty());
  app.add_option("--write-config", o.write_config,
                 "Write the settings this command would train with to FILE (.json or .toml) and exit")
      ->type_name("FILE")
      ->check(cli::not_empty());
  app.add_option("--resume", o.resume_dir,
                 "Continue this run from its newest checkpoint; options given with it: docs/checkpoints.md")
      ->type_name("DIR")
      ->check(cli::not_empty());
  o.settings.add_to(app);
  o.settings.group("Output")->add_flag("--quiet", o.quiet, "No progress output");
}

// The preset a new run falls back on when none is named (on the command
// line or in a --config file): with no GPU, "cpu" (the full SAGAN-32
// default would take days), said on the output; the file's settings and the
// options given still win over it, and config.json records it.
// --write-config takes it too: its file holds what the same command would
// train here.
std::string fallback_preset(const TrainToolOptions& o, const ConfigFileSettings& file,
                            const std::function<void(TrainConfig&, ConfigSources&)>& apply_cli) {
  if (!o.resume_dir.empty()) return "";
  // The settings without a fallback: the preset they name, if any, and the
  // device as the file and the options give it (a file may say cpu).
  ConfigSources given;
  const TrainConfig asked = layered_settings(file, apply_cli, "", given);
  if (!asked.preset.empty()) return "";
  // On the CPU by choice (--device cpu) or for want of a GPU.
  const bool chosen = asked.device == "cpu";
  if (!(chosen || (asked.device == "auto" && !cuda_available()))) return "";
  const std::string why = chosen ? given.where("device") + " cpu" : "no GPU found";
  // preset = "" in a file (a GPU machine's --write-config, a GPU run's
  // config.json) asks for the defaults, sagan32's, on purpose.
  if (given.given("preset")) {
    if (!o.quiet)
      fmt::print(
          "sagan-train: {}; {} \"\" asks for the defaults, sagan32's, under its settings: {}; --preset cpu "
          "gives the small cpu preset\n",
          why, given.where("preset"), find_train_preset("sagan32")->summary);
    return "";
  }
  const TrainPreset& cpu = *find_train_preset("cpu");
  if (!o.quiet)
    fmt::print(
        "sagan-train: {}, so --preset cpu: {}.\n"
        "sagan-train: {} still win; --preset sagan32 is the full default: {}.\n",
        why, cpu.summary, o.config_file.empty() ? "options given" : o.config_file + "'s settings and options given",
        find_train_preset("sagan32")->summary);
  return cpu.name;
}

// What every rank must have been told alike, one line each.
std::string run_mode(const cli::ParseOutcome& p, const TrainToolOptions& o) {
  const auto given = [](bool yes) { return yes ? "given" : "not given"; };
  return fmt::format("--help: {}\n--write-config: {}\n--resume: {}\n", given(p.kind == cli::ParseOutcome::Help),
                     given(!o.write_config.empty()), given(!o.resume_dir.empty()));
}

int run(TrainToolOptions o, const std::shared_ptr<dist::Communicator>& world) {
  if (world->rank() != 0) o.quiet = true;  // rank 0 speaks for the job
  RunOptions ro;
  ro.given = ConfigSources{};  // settings named by option and file, not by TrainConfig member
  ro.comm = world;
  auto apply_cli = [&](TrainConfig& c, ConfigSources& given) { o.settings.apply(c, given); };
  // Defaults, a preset, the config file, the command line: each over the
  // last. A missing file or an unknown preset fails on every rank (or on one
  // whose copy of the file differs): agreed, so that rank 0 alone says why.
  TrainConfig cfg;
  dist::run_agreed(world.get(), [&] {
    const ConfigFileSettings file = ConfigFileSettings::read(o.config_file);  // read once, layered twice
    cfg = layered_settings(file, apply_cli, fallback_preset(o, file, apply_cli), ro.given);
  });
  // A preset named beside a file that sets each of its settings (every
  // --write-config file does) changes only the name config.json records:
  // said when the run then differs from the preset (the preset line of a
  // written file edited), not for a file that agrees with its preset.
  if (const TrainPreset* p = find_train_preset(cfg.preset); p && ro.given.given("preset") && !o.quiet) {
    const bool sets_any = std::any_of(p->settings.begin(), p->settings.end(),
                                      [&](const auto& setting) { return !ro.given.given(setting.first); });
    const bool overridden = std::any_of(p->settings.begin(), p->settings.end(), [&](const auto& setting) {
      const TrainOption* option = find_train_option(setting.first);
      return option != nullptr && option->get(cfg) != setting.second;
    });
    if (!sets_any && overridden)
      fmt::print(stderr,
                 "sagan-train: note: {} {}: {} set each setting the preset gives, some to other values, so the "
                 "preset changes nothing but the name config.json records\n",
                 ro.given.where("preset"), cfg.preset,
                 o.config_file.empty() ? "the options" : o.config_file + " and the options");
  }
  if (!o.write_config.empty()) {
    dist::run_agreed(world.get(), [&] {
      SAGAN_CHECK(o.resume_dir.empty(), "--write-config: not with --resume (the run's settings are its config.json)");
      // Rewriting the file read would drop its comments and layout.
      cli::check_output_not_input(o.write_config, "--write-config " + o.write_config, {{"--config", o.config_file}});
      cfg.validate(ro.given);
      cfg.world_size = world->size();  // what this launch would train with and config.json would record
      if (world->rank() != 0) return;  // one file, written once
      write_config_file(o.write_config, cfg);
      fmt::print("sagan-train: wrote {}\n", o.write_config);
    });
    return 0;
  }
  ro.resume_dir = o.resume_dir;
  ro.progress = !o.quiet;
  const RunResult r = run_training(cfg, ro);
  // Stopped by a signal (checkpoint saved): 128 + the signal, as a shell
  // reports a process that a signal ended, so that `sagan-train && ...` and
  // job schedulers do not take it for a finished run.
  return r.stop_signal != 0 ? 128 + r.stop_signal : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // First: under mpirun / srun this is MPI_Init (docs/distributed.md).
  std::shared_ptr<dist::Communicator> world;
  try {
    world = dist::init_world(&argc, &argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sagan-train: error: {}\n", e.what());
    return 1;
  }
  CLI::App app{
      "sagan-train: train a Self-Attention GAN (hinge loss, TTUR Adam, EMA generator).\n"
      "With no options it trains class-conditional SAGAN-32 on Fashion-MNIST\n"
      "(Debian package dataset-fashion-mnist) and writes a run directory under runs/;\n"
      "on the CPU (no GPU, or --device cpu) it takes --preset cpu (15-30 minutes on 2 cores)\n"
      "unless a preset is named, and says so. The defaults shown are sagan32's; \"(--preset cpu: 16)\"\n"
      "after an option gives the presets that set another value.\n"
      "Ctrl-C (or SIGTERM, SIGUSR1, SIGUSR2) stops after the current step, saves a checkpoint and\n"
      "exits 128 + the signal (130, 143, 138, 140); a second signal quits at once. --resume continues\n"
      "exactly.\n"
      "A run directory is used by one process at a time.\n"
      "mpirun -np N sagan-train ... (or srun) trains data-parallel: --batch-size per rank, a global\n"
      "batch of N x --accumulate x --batch-size; one GPU per rank, or the CPU. Stop such a job with\n"
      "kill -USR1 <mpirun's pid>: on Ctrl-C mpirun sends the ranks SIGTERM a second later and SIGKILL\n"
      "a second after that, too soon for a checkpoint (docs/distributed.md)."};
  TrainToolOptions o;
  add_options(app, o);
  // An error on one rank of several during training names the rank and ends
  // the whole job (MPI_Abort), so that no other rank waits for it in an
  // all-reduce.
  const std::string tool =
      world->size() > 1 ? fmt::format("sagan-train (rank {} of {})", world->rank(), world->size()) : "sagan-train";
  // A failure the ranks agreed on (dist/agree.h) ends every rank alike,
  // none of them in a collective: rank 0 says why, and no abort is needed.
  bool agreed = false;
  const bool lead = world->rank() == 0;
  const int rc = cli::guarded_main(tool.c_str(), [&]() -> int {
    const cli::ParseOutcome p = cli::parse_command_line("sagan-train", app, argc, argv);
    try {
      // Each rank parsed its own command line (mpirun gives them the same
      // one, a launch per rank need not): they agree on it before any goes
      // on, so that a rank that cannot parse its options ends the job with
      // its message instead of leaving the others in a collective. One
      // process: the error passes through, as in every tool.
      dist::run_agreed(world.get(), [&] {
        if (p.kind == cli::ParseOutcome::Error) throw Error(p.text);
        // A bad SAGAN_* variable now, not at its first use in the first step.
        if (p.kind == cli::ParseOutcome::Run) check_env_settings();
      });
      // The run mode too: a rank that writes a config file or resumes while
      // another trains afresh would leave the two in different collectives.
      dist::check_same_everywhere(world.get(), run_mode(p, o), "the command lines");
      if (p.kind == cli::ParseOutcome::Help) {
        if (lead) fmt::print("{}", p.text);
        return 0;
      }
      return run(o, world);
    } catch (const dist::AgreedError& e) {
      agreed = true;
      if (lead) fmt::print(stderr, "sagan-train: error: {}\n", e.what());
      return 1;
    }
  });
  // A signal stops every rank at the same step, in order: no abort then.
  // Errors before run() (the command lines) are all agreed ones.
  if (rc != 0 && rc < 128 && world->size() > 1 && !agreed) {
    std::fflush(stdout);
    std::fflush(stderr);
    world->abort(rc);
  }
  return rc;
}
