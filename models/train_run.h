// A whole training run on disk: the run directory, metrics (CSV and
// TensorBoard), sample grids, rotating checkpoints, progress display, and
// clean stop on a signal (finish the step, checkpoint, exit).
//
// For its duration run_training installs its own handlers for SIGINT,
// SIGTERM, SIGUSR1 and SIGUSR2 (restored when it returns): the first asks
// for a stop after the current step, a second one ends the process as the
// signal's default would. A program that embeds it and handles these
// signals itself gets its handlers back afterwards, not during the run; one
// run at a time per process (the stop request is process-wide).
//
// <run_dir>/config.json                  resolved settings
// <run_dir>/checkpoints/step_%08d.safetensors   the last keep_checkpoints
// <run_dir>/samples/step_%08d.png       EMA-generator grids, fixed z and classes
// <run_dir>/metrics.csv                   one row every log_every steps
// <run_dir>/tb/events.out.tfevents.*      the same scalars for TensorBoard, and each sample
//                                          grid as the image summary "samples"
// <run_dir>/fd_reference.safetensors      with --fd-every: the real images' FD statistics
//                                          (metrics.csv then has an "fd" column, blank between measurements)
// <run_dir>/config_changes.log            settings changed by --resume, one line per resume that changed any
// <run_dir>/.lock                         flock'ed by the process training in it (RunDirLock)
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sagan/dist/communicator.h"
#include "sagan/models/checkpoint_file.h"  // checkpoint files of a run (latest_checkpoint, ...)
#include "sagan/models/data/dataset.h"
#include "sagan/models/train_config.h"

namespace sagan {

// A program's own data set (RunOptions::dataset), made from the run's settings.
using DatasetFactory = std::function<std::shared_ptr<data::Dataset>(const TrainConfig&)>;

struct RunOptions {
  // Continue the run in this directory from its config.json and newest
  // checkpoint. The settings listed in `given` are applied over its config
  // where the table allows (--steps, learning rates, ...; see
  // apply_on_resume) and refused otherwise (--ch, --batch-size, ...).
  std::string resume_dir;
  // Where cfg's settings came from, to name them in errors: in a program's
  // code unless told otherwise (sagan-train lists its options and files).
  // With a resume, the settings listed are applied over the run's
  // (given.from_code("steps")); a member of cfg changed from its default to
  // other than the run's value, but not listed, is not applied, with a
  // warning naming it.
  ConfigSources given = ConfigSources::code();
  bool progress = true;  // print progress
  // How the run names itself in what it prints ("sagan-train: done, ..."):
  // a program's own name.
  std::string name = "sagan-train";
  // This process's communicator (dist/launch.h); null or the single one for
  // a plain run. Rank 0 alone writes the run directory (docs/distributed.md).
  std::shared_ptr<dist::Communicator> comm;
  // A program's own data, in place of the data set cfg.dataset names
  // (docs/training.md, "A program's own data set"). The run records dataset
  // "custom" in config.json, and run_training calls this once in each
  // process (every rank), with the run's checked settings (a resume's come
  // from its config.json), where it would load a built-in data set; what it
  // throws ends the start as a failed data load does. cfg.data_path is kept
  // (absolute) for it to read; --channels must be auto or the data set's.
  // A resume of such a run needs it again (sagan-train --resume refuses
  // one), and a run of a built-in data set refuses it.
  DatasetFactory dataset;
};

// The data set a config names (errors say how to install or point to it;
// "custom" is a program's own: RunOptions::dataset).
std::shared_ptr<data::Dataset> make_dataset(const TrainConfig& cfg);

struct RunResult {
  std::string run_dir;
  int stop_signal = 0;  // the signal that stopped the run early (a checkpoint saved), else 0
  bool started = true;  // false: stopped by a signal before anything was written
};

// Checks cfg (or the resumed run's) and that the run directory can be
// written, before loading data or building a model; locks the directory
// against other processes (rank 0); runs to cfg.steps or a stop signal.
// A --resume whose steps are fewer than the run has done is refused. The
// run directory a failed start made (not its parents) is removed again.
RunResult run_training(TrainConfig cfg, const RunOptions& opt);

}  // namespace sagan
