#include "sagan/models/train_run.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/csv.h"
#include "sagan/core/io/image.h"
#include "sagan/core/io/tensorboard.h"
#include "sagan/dist/agree.h"
#include "sagan/dist/launch.h"
#include "sagan/dist/watchdog.h"
#include "sagan/models/data_parallel.h"
#include "sagan/models/quality/fd_monitor.h"
#include "sagan/models/run_outputs.h"
#include "sagan/models/run_recovery.h"
#include "sagan/models/step_estimate.h"
#include "sagan/models/trainer.h"

namespace sagan {

namespace fs = std::filesystem;

namespace {
std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_announce_stop{false};
// The handler's message, with the run's name (RunOptions::name), made
// before the handler is installed: it may only write() it.
char g_stop_message[256] = "";
size_t g_stop_message_size = 0;

// The first stop signal asks for a stop after the current step (and a
// checkpoint); a second one, of any of them, ends the process at once, as
// the signal's default would (a checkpoint being written is atomic: the old
// one stays). Only async-signal-safe calls here.
extern "C" void on_stop_signal(int sig) {
  int none = 0;
  if (!g_stop_signal.compare_exchange_strong(none, sig)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  if (g_announce_stop.load()) {
    const int saved_errno = errno;  // write() may change it under the code this interrupted
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, g_stop_message, g_stop_message_size);
    errno = saved_errno;
  }
}

// Stop signals, for the scope of a run: Ctrl-C (SIGINT), SIGTERM, and
// SIGUSR1 / SIGUSR2, which Open MPI's mpirun forwards to every rank as they
// are (on SIGINT or SIGTERM it sends the ranks SIGCONT, SIGTERM a second
// later and SIGKILL a second after that: too soon for a checkpoint) and
// Slurm sends ahead of a time limit with --signal=USR1@<seconds>.
struct SignalScope {
  using Handler = void (*)(int);
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
  Handler old[std::size(kSignals)];
  SignalScope(bool announce, const std::string& name) {
    // A name too long for the buffer is cut; the line still ends.
    const std::string text =
        fmt::format("\n{}: stopping once the current step is done (a second signal quits at once)\n", name);
    g_stop_message_size = std::min(text.size(), sizeof g_stop_message);
    std::memcpy(g_stop_message, text.data(), g_stop_message_size);
    g_stop_message[g_stop_message_size - 1] = '\n';
    g_stop_signal.store(0);
    g_announce_stop.store(announce);
    for (size_t i = 0; i < std::size(kSignals); ++i) old[i] = std::signal(kSignals[i], on_stop_signal);
  }
  ~SignalScope() {
    for (size_t i = 0; i < std::size(kSignals); ++i) std::signal(kSignals[i], old[i]);
  }
};

// runs/<date>-<time>, made here so that it is this run's alone: a second
// run started in the same second gets runs/<date>-<time>-2.
std::string make_default_run_dir() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  const std::string base = std::string("runs/") + buf;
  std::error_code ec;
  fs::create_directories("runs", ec);
  SAGAN_CHECK(!ec, "--run-dir (default runs/...): cannot create runs/: {}", ec.message());
  for (int i = 1;; ++i) {
    const std::string dir = i == 1 ? base : fmt::format("{}-{}", base, i);
    if (fs::create_directory(dir, ec)) return dir;
    SAGAN_CHECK(!ec, "--run-dir (default {}): cannot create it: {}", dir, ec.message());
  }
}

std::string hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--:--";
  auto s = static_cast<int64_t>(seconds);
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

// Found before data is loaded or a model built (io::check_writable_dir).
// `option`: "--resume", "--run-dir" or "my.toml: run_dir" (ConfigSources::where).
void check_writable_dir(const std::string& dir, const std::string& option) {
  io::check_writable_dir(dir, fmt::format("{} {}", option, dir));
}

// A folder as the run keeps it: "runs/x/", "runs/./x" and "runs/x" alike.
std::string normal_dir(const std::string& dir) {
  std::string d = fs::path(dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

// The resumed run's config.json with the settings given alongside --resume
// applied or refused (apply_on_resume); `sources` then names each setting's
// origin, the run's config.json or the option. `written` gets config.json as
// it was, before the changes (its passes decide what the checkpoints need).
TrainConfig resumed_config(const TrainConfig& given, const RunOptions& opt, ConfigSources& sources,
                           std::vector<ConfigChange>& changes, TrainConfig& written) {
  const std::string path = (fs::path(opt.resume_dir) / "config.json").string();
  std::error_code ec;
  SAGAN_CHECK(fs::exists(path, ec), "--resume {}: no config.json there; is it a run directory?", opt.resume_dir);
  TrainConfig cfg;
  read_config_file(path, cfg, &sources);
  cfg.run_dir = normal_dir(opt.resume_dir);  // where it is now, should it have moved
  // A run from before --channels: its images had the channels its model has.
  if (!sources.given("channels")) cfg.channels = std::to_string(cfg.model.image_channels);
  written = cfg;
  changes = apply_on_resume(cfg, path, given, opt.given);
  for (const ConfigChange& c : changes) sources.by_key[c.key] = opt.given.by_key.at(c.key);
  return cfg;
}

// Leftovers of an earlier attempt in the run directory (run_recovery.h):
// temporaries of interrupted checkpoint writes, a run never checkpointed.
void note_recovery(const std::string& run_dir, bool resume, bool progress, const std::string& name) {
  const int64_t orphans = remove_orphaned_checkpoint_temporaries(run_dir);
  if (!progress) return;
  if (orphans > 0)
    fmt::print("{}: removed {} unfinished checkpoint file(s) from {}/checkpoints\n", name, orphans, run_dir);
  if (run_never_checkpointed(run_dir))
    fmt::print("{}: {} holds a run that stopped before its first checkpoint: {}\n", name, run_dir,
               resume ? "no checkpoint yet: starting from step 0" : "starting it afresh");
}

// The newest checkpoint that restores, older ones when it does not (each
// failure a warning naming both files); "" when the run has none yet.
// `accept` as restore_newest_valid's.
std::string resume_trainer(Trainer& trainer, const std::string& run_dir, const std::string& name,
                           const std::function<void()>& accept) {
  return restore_newest_valid(
      run_dir, [&](const std::string& path) { trainer.load_checkpoint(path); },
      [&](const std::string& warning) { fmt::print(stderr, "{}: warning: {}\n", name, warning); }, accept);
}

// The command that continues the run: a resume keeps ranks x passes, so a
// run of several ranks is continued by as many. A program's own data set is
// the program's to resume (sagan-train refuses the run).
std::string resume_command(const std::string& run_dir, int64_t world_size, const std::string& dataset) {
  if (dataset == "custom")
    return fmt::format("run_training with RunOptions::resume_dir = {} and the same RunOptions::dataset{}", run_dir,
                       world_size > 1 ? fmt::format(", on {} ranks as before", world_size) : "");
  return world_size > 1
             ? fmt::format("mpirun -np {} sagan-train --resume {} (as many ranks as before, from any launcher)",
                           world_size, run_dir)
             : fmt::format("sagan-train --resume {}", run_dir);
}

// One iteration; an error in it (a non-finite update under --on-nan stop,
// say) also says where the run's last good state is. When the step's inputs
// could not be drawn (an image that cannot be read), no update was made and
// the trainer holds the last step's state: `keep` saves it first, so that
// the steps since the last checkpoint are not lost, and says what it did.
// An error that stopped the run, and after it where the run stands: "run
// dir D; its newest checkpoint is F" (or "no checkpoint yet"), then `then`.
std::string with_run_dir(const Error& e, const std::string& run_dir, const std::string& name,
                         const std::string& then = "") {
  std::string last;
  try {
    last = latest_checkpoint(run_dir);
  } catch (const std::exception&) {  // an unreadable checkpoints/ must not hide the error itself
  }
  return fmt::format("{}\n{}: run dir {}; {}{}", e.what(), name, run_dir,
                     last.empty() ? "no checkpoint yet" : "its newest checkpoint is " + last, then);
}

StepStats guarded_step(Trainer& trainer, const std::string& run_dir, const std::string& name,
                       const std::function<std::string()>& keep) {
  auto with_run_dir = [&](const Error& e, const std::string& then = "") {
    return sagan::with_run_dir(e, run_dir, name, then);
  };
  try {
    return trainer.step();
  } catch (const dist::AgreedError& e) {  // the same on every rank: stays agreed
    throw dist::AgreedError(with_run_dir(e));
  } catch (const InputsNotDrawn& e) {
    std::string kept;
    try {
      kept = keep();
    } catch (const std::exception& failed) {
      throw Error(
          with_run_dir(e, fmt::format(" (saving step {} failed too: {})", trainer.step_count(), failed.what())));
    }
    throw Error(
        with_run_dir(e, fmt::format(" ({}); fix or remove the file, then: {}", kept,
                                    resume_command(run_dir, trainer.config().world_size, trainer.config().dataset))));
  } catch (const Error& e) {
    throw Error(with_run_dir(e));
  }
}

// "ch=64", or "g_ch=64 d_ch=32" when the networks differ.
std::string widths_text(const SaganConfig& m) {
  return m.resolved_g_ch() == m.resolved_d_ch() ? fmt::format("ch={}", m.resolved_g_ch())
                                                : fmt::format("g_ch={} d_ch={}", m.resolved_g_ch(), m.resolved_d_ch());
}
}  // namespace

std::shared_ptr<data::Dataset> make_dataset(const TrainConfig& cfg) {
  if (cfg.dataset == "fashion-mnist")
    return data::fashion_mnist("train", cfg.data_path.empty() ? data::kFashionMnistDir : cfg.data_path);
  if (cfg.dataset == "cifar10") return data::cifar10(cfg.data_path, "train");
  if (cfg.dataset == "folder")
    return data::image_folder(cfg.data_path, cfg.channels == "auto" ? 0 : std::stoi(cfg.channels));
  SAGAN_CHECK(cfg.dataset != "custom",
              "--dataset custom: a program's own data set (RunOptions::dataset, docs/training.md); sagan-train "
              "has none: resume such a run from the program that started it");
  SAGAN_FAIL("--dataset: '{}' is not one of fashion-mnist, cifar10, folder", cfg.dataset);
}

namespace {

// The FD monitor's weights file, loaded after the run directory is made
// (a file that is no feature net's then fails the start, which removes the
// directory it made), found here before any directory or file is made:
// rank 0 alone runs the monitor.
void check_fd_weights(const TrainConfig& cfg, const ConfigSources& sources, bool writer) {
  if (!writer || cfg.fd_every <= 0 || cfg.fd_weights.empty()) return;
  SAGAN_CHECK(fs::is_regular_file(cfg.fd_weights), "{} {}: no such file", sources.where("fd_weights"), cfg.fd_weights);
}

// A program's own data set (RunOptions::dataset) serves only runs of one:
// a new run records dataset "custom" (and without a factory may not name
// it), a resumed one must be such a run. `sources` names the setting.
void settle_custom_dataset(TrainConfig& cfg, const RunOptions& opt, const ConfigSources& sources) {
  if (opt.resume_dir.empty()) {
    if (opt.dataset) cfg.dataset = "custom";
    SAGAN_CHECK(opt.dataset || cfg.dataset != "custom",
                "{} custom: a program's own data set (RunOptions::dataset, docs/training.md), and none was given; "
                "sagan-train reads fashion-mnist, cifar10 or folder",
                sources.where("dataset"));
    return;
  }
  if (opt.dataset)
    SAGAN_CHECK(cfg.dataset == "custom",
                "--resume {}: the run trained on the data set '{}'; RunOptions::dataset would give it other data "
                "(resume it without one, as sagan-train --resume does)",
                opt.resume_dir, cfg.dataset);
  else
    SAGAN_CHECK(cfg.dataset != "custom",
                "--resume {}: the run trained on a program's own data set (dataset \"custom\" in its config.json); "
                "resume it from that program, which gives the data set (RunOptions::dataset)",
                opt.resume_dir);
}

// The run's settings: the resumed run's config.json with the options given
// alongside --resume applied, or a new run's, with its directory chosen;
// checked, and the directory found writable (on rank 0), before any data
// is loaded or a model built (train_in checks again once the data set's
// channels are known). `sources` gets where each setting came from.
// `lock` (rank 0) holds the directory from before the checks that decide
// whether a run may start there; `made` names the directory when this call
// created it, then the folders above it that it created, innermost first
// (removed again should the start fail).
TrainConfig settle_config(TrainConfig cfg, const RunOptions& opt, bool writer, std::vector<ConfigChange>& changes,
                          RunDirLock& lock, std::vector<std::string>& made, ConfigSources& sources) {
  const bool resume = !opt.resume_dir.empty();
  const bool parallel = opt.comm && opt.comm->size() > 1;
  sources = resume ? ConfigSources{} : opt.given;
  if (!cfg.run_dir.empty()) cfg.run_dir = normal_dir(cfg.run_dir);
  // The data path as config.json keeps it: absolute, so that --resume,
  // sagan-eval and sagan-class-diversity find the data from any folder.
  if (!cfg.data_path.empty()) {
    std::error_code ec;
    const fs::path abs = fs::absolute(cfg.data_path, ec);
    if (!ec) cfg.data_path = normal_dir(abs.string());
  }
  // The checks and the directory, on every rank at once: a failure on any
  // rank (rank 0's: the directory) ends them all together (dist/agree.h).
  dist::run_agreed(opt.comm.get(), [&] {
    if (resume) {
      TrainConfig written;
      cfg = resumed_config(cfg, opt, sources, changes, written);
      settle_custom_dataset(cfg, opt, sources);
      cfg.validate(sources);  // the one check of the settings, before any work
      check_fd_weights(cfg, sources, writer);
      // Before the data is loaded and the networks built, and not taken for
      // a damaged checkpoint (every one would fail the same way).
      const int64_t ranks = opt.comm ? opt.comm->size() : 1;
      if (!list_checkpoints(cfg.run_dir).empty())
        check_resume_passes("--resume " + cfg.run_dir, written, ranks, cfg.accumulate);
      // The launch's number of ranks (config.json gets it from the Trainer),
      // logged with the settings changed alongside.
      if (ranks != cfg.world_size)
        changes.push_back({"world_size", std::to_string(cfg.world_size), std::to_string(ranks), "the launch"});
      if (writer) {
        // Its folders too: a read-only checkpoints/ would fail the first
        // save, after the steps it should have kept.
        check_writable_dir(cfg.run_dir, "--resume");
        for (const char* sub : {"checkpoints", "samples"})
          check_writable_dir((fs::path(cfg.run_dir) / sub).string(), "--resume");
        lock = RunDirLock(cfg.run_dir);
      }
    } else {
      settle_custom_dataset(cfg, opt, sources);
      cfg.validate(sources);  // before any directory is made
      check_fd_weights(cfg, sources, writer);
      // A run's config.json reused as --config names its ranks; the launch's
      // count wins, which changes the global batch: said, not silent.
      const int64_t ranks = opt.comm ? opt.comm->size() : 1;
      if (writer && opt.progress && sources.given("world_size") && ranks != cfg.world_size)
        fmt::print(stderr,
                   "{}: note: {} {} is set by the launch, which has {} rank(s): the global batch is {} ({} "
                   "rank(s) x {} pass(es) of {})\n",
                   opt.name, sources.where("world_size"), cfg.world_size, ranks,
                   ranks * cfg.accumulate * cfg.batch_size, ranks, cfg.accumulate, cfg.batch_size);
      if (writer) {
        // Named as the user gave it: "--run-dir" or "my.toml: run_dir".
        const std::string where = sources.where("run_dir");
        if (cfg.run_dir.empty()) {
          const bool runs_there = fs::exists("runs");
          cfg.run_dir = make_default_run_dir();
          made = {cfg.run_dir};
          if (!runs_there) made.push_back("runs");
        } else {
          // Some other program's config.json: refused before anything is
          // written there (the lock file included).
          const std::string foreign = foreign_config_problem(cfg.run_dir);
          SAGAN_CHECK(foreign.empty(),
                      "{} {}: holds a config.json that this sagan-train cannot read as a run's ({}); choose "
                      "another directory",
                      where, cfg.run_dir, foreign);
          const std::string stray = stray_files_problem(cfg.run_dir);
          SAGAN_CHECK(stray.empty(), "{} {}: {}; choose an empty or new directory", where, cfg.run_dir, stray);
          // Made here (and so removed should the start fail) only when this
          // process created it: another start may be making the same one.
          std::error_code ec;
          const fs::path dir(cfg.run_dir);
          std::vector<std::string> parents;  // missing now, innermost first
          for (fs::path p = dir.parent_path(); !p.empty() && !fs::exists(p, ec); p = p.parent_path())
            parents.push_back(p.string());
          if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);  // errors: reported below
          if (fs::create_directory(dir, ec)) {
            made = {cfg.run_dir};
            made.insert(made.end(), parents.begin(), parents.end());
          }
          check_writable_dir(cfg.run_dir, where);
        }
        lock = RunDirLock(cfg.run_dir);
        // Under the lock, so that a run another process finished meanwhile
        // counts. A directory with checkpoints is a run (its config.json
        // lost or not); one that failed before its first checkpoint is
        // started over (run_recovery.h).
        SAGAN_CHECK(list_checkpoints(cfg.run_dir).empty(),
                    "{} {}: a run already exists there; continue it with --resume {} or choose another "
                    "directory",
                    where, cfg.run_dir, cfg.run_dir);
      }
    }
    if (writer) note_recovery(cfg.run_dir, resume, opt.progress, opt.name);
  });
  // Rank 0's choice of directory (named after its clock); every rank has
  // finished its checks before rank 0 writes anything.
  if (parallel && !resume) cfg.run_dir = dist::broadcast_text(*opt.comm, cfg.run_dir);
  return cfg;
}

// A start that failed before its first step leaves no directory behind
// when it made it: what is there (config.json, the CSV header, TensorBoard's
// first event file, the FD reference) is this start's alone and describes
// nothing that ran. The folders it made above it go too while they are
// empty (another start may have made its own run beside it meanwhile).
// Errors are ignored: the failure itself is what the user needs to read.
void remove_made_dirs(const std::vector<std::string>& made) {
  std::error_code ec;
  fs::remove_all(made.front(), ec);
  for (size_t i = 1; i < made.size(); ++i) fs::remove(made[i], ec);  // only when empty
}

// "64", "64 x 2 ranks = 128", "64 x 4 passes x 2 ranks = 512".
std::string global_batch_text(const TrainConfig& c) {
  if (c.world_size == 1 && c.accumulate == 1) return std::to_string(c.batch_size);
  return fmt::format("{}{}{} = {}", c.batch_size, c.accumulate > 1 ? fmt::format(" x {} passes", c.accumulate) : "",
                     c.world_size > 1 ? fmt::format(" x {} ranks", c.world_size) : "",
                     c.batch_size * c.accumulate * c.world_size);
}

// What is trained on what, and the ETA before the first step (a CPU step can
// take seconds).
void announce(const Trainer& trainer, const data::Dataset& dataset, bool resumed, const std::string& name) {
  const TrainConfig& rc = trainer.config();
  const int64_t K = rc.model.num_classes;
  fmt::print("{}: {} SAGAN-{} {}, batch {}{} on {} ({} images{}) on {}; run dir {}{}\n", name,
             K > 0 ? "class-conditional" : "unconditional", rc.model.resolution, widths_text(rc.model),
             global_batch_text(rc), rc.preset.empty() ? "" : fmt::format(" (preset {})", rc.preset), dataset.name(),
             dataset.size(), K > 0 ? fmt::format(", {} class{}", K, K == 1 ? "" : "es") : "",
             device_name(trainer.device()), rc.run_dir,
             resumed ? fmt::format(" (resumed at step {})", trainer.step_count()) : "");
  if (trainer.step_count() < rc.steps) {
    const double t = estimate_iteration_seconds(rc, trainer.device());
    fmt::print("{}: about {:.2f} s a step here (one timed on a copy of the networks): ETA {} for {} steps{}\n", name, t,
               hms(t * static_cast<double>(rc.steps - trainer.step_count())), rc.steps - trainer.step_count(),
               rc.fd_every > 0 ? ", FD measurements not counted (the progress line's ETA counts them)" : "");
  }
  std::fflush(stdout);
}

// A metrics.csv row (and TensorBoard's scalars) of step s; the FD of the EMA
// generator when due (NaN otherwise, a blank cell).
io::CsvRow metrics_row(Trainer& trainer, const StepStats& s, double it_s, quality::FdMonitor* fd, double& fd_value) {
  const TrainConfig& rc = trainer.config();
  io::CsvRow row = {{"step", s.step},     {"loss_d", s.loss_d},   {"loss_g", s.loss_g},   {"d_real", s.d_real},
                    {"d_fake", s.d_fake}, {"lr_d", rc.adam_d.lr}, {"lr_g", rc.adam_g.lr}, {"it_per_s", it_s}};
  if (rc.grad_clip > 0) {
    row.emplace_back("grad_norm_d", s.grad_norm_d);
    row.emplace_back("grad_norm_g", s.grad_norm_g);
  }
  if (rc.on_nan == "skip") row.emplace_back("skipped_steps", s.skipped_steps);
  fd_value = std::nan("");
  if (fd) {
    const bool due = s.step % rc.fd_every == 0;
    if (due) fd_value = fd->measure(trainer.ema_generator());
    row.emplace_back("fd", due ? io::CsvValue(fd_value) : io::CsvValue(""));  // blank between measurements
  }
  for (auto& [name, v] : trainer.gammas()) row.emplace_back("gamma/" + name, v);
  return row;
}

// A terminal gets one progress line redrawn in place, a log one line each.
void show(const std::string& line, bool tty) {
  if (tty)
    fmt::print("\r{:<110}", line);
  else
    fmt::print("{}\n", line);
  std::fflush(stdout);
}

// The largest stop signal any rank received (mpirun forwards a signal to
// every rank, not at the same step: they stop together).
int stop_signal(const RunOptions& opt) {
  int stop = g_stop_signal.load();
  if (opt.comm && opt.comm->size() > 1)
    for (uint64_t v : opt.comm->all_gather(static_cast<uint64_t>(stop))) stop = std::max(stop, static_cast<int>(v));
  return stop;
}

// A data-parallel rank's stall watchdog (dist/watchdog.h): on a stall it
// says why, naming the rank, and ends the process with exit code 1; mpirun
// (or srun --kill-on-bad-exit=1) then ends the other ranks. One watches the
// start (`setting_up`: loading the data, building the networks and
// communicators, resuming, rank 0's first outputs, up to the ranks' barrier
// before the first step), the next the training loop. It runs on its own
// thread, beside a training thread that may be blocked in MPI, so it does
// not call MPI_Abort (MPI_THREAD_FUNNELED), and it writes to stderr's
// descriptor directly: the training thread may hold stdout's lock, blocked
// in a write to a pipe nobody drains. Null for one process (a one-rank NCCL
// job has one in the loop: it runs the code path of many); --dist-timeout 0
// leaves only NCCL's error polling. `reducer`: the gradients' communicator,
// polled for NCCL's errors (null at the start: not made yet).
std::unique_ptr<dist::StallWatchdog> make_watchdog(const std::string& name, const dist::Communicator* comm,
                                                   const dist::Communicator* reducer, int64_t timeout,
                                                   bool setting_up) {
  if (!comm) return nullptr;
  const bool gpu_waits = reducer && std::string(reducer->backend_name()) == "nccl";
  if ((comm->size() == 1 || timeout == 0) && !gpu_waits) return nullptr;
  const std::string who = fmt::format("{} (rank {} of {})", name, comm->rank(), comm->size());
  auto on_stall = [who, gpu_waits, timeout, setting_up](const dist::StallWatchdog::Stall& st) {
    try {
      std::string why = st.error;
      if (why.empty()) {
        why = setting_up ? fmt::format(
                               "the start (loading the data, building the networks, resuming, rank 0's first "
                               "outputs) has not finished after {:.0f} s (--dist-timeout {})",
                               st.seconds, timeout)
                         : fmt::format("no training step finished in the last {:.0f} s (--dist-timeout {})", st.seconds,
                                       timeout);
        if (st.waiting)
          why += fmt::format(
              "; this rank was waiting for the others in {}: one of them is stuck or gone, or the link to it failed",
              st.waiting);
        else if (gpu_waits)
          why +=
              "; this rank was not in an MPI call: it is stuck itself (its step, a data read or a write), or its "
              "GPU waits in an NCCL all-reduce for a rank that is";
        else if (setting_up)
          why += "; this rank was not waiting for the others: it is stuck itself (a data read, most likely)";
        else
          why += "; this rank was not waiting for the others: it is stuck itself (its step, a data read or a write)";
        why += setting_up ? ". Raise --dist-timeout if the start rightly takes this long"
                          : ". Raise --dist-timeout if steps, with rank 0's checkpoints, samples and FD, rightly take "
                            "this long";
      }
      const std::string text = fmt::format("\n{}: error: {}; ending the job\n", who, why);
      for (size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
    } catch (...) {  // out of memory formatting: end the job all the same
    }
    std::_Exit(1);
  };
  std::vector<dist::StallWatchdog::Poller> pollers;
  if (reducer) pollers.push_back([reducer] { return reducer->async_error(); });
  return std::make_unique<dist::StallWatchdog>(std::chrono::seconds(timeout), on_stall, std::move(pollers));
}

// What every rank of a data-parallel job must share before its first
// collective: the settings (the data path aside: each machine may mount the
// data at its own path), the kind of device and what the data set holds.
// A rank with another preset (it found no GPU), a missing image or class
// folder, or no GPU would otherwise hang in, or garble, the all-reduces.
std::string startup_facts(TrainConfig cfg, const data::Dataset& d, Device device) {
  cfg.data_path.clear();
  // A folder's images have sizes of their own (0 x 0 here): resized to the
  // run's resolution as they are read.
  const std::string size = d.height() > 0 ? fmt::format("{}x{}", d.height(), d.width()) : "images of any size";
  // The class names too: ranks whose folders are named otherwise would
  // train with labels swapped between them.
  return fmt::format("{}\ndevice: {}\ndata set: {} images, {} classes ({}), {} channels, {}\n", cfg.to_json(),
                     device.is_cuda() ? "cuda" : device_name(device), d.size(), d.num_classes(),
                     fmt::join(d.class_names(), ", "), d.channels(), size);
}

// The checkpoint to resume from: rank 0 picks it (the newest that restores,
// warning about each it passes over) and every other rank loads exactly that
// file, so that no rank resumes elsewhere because its view of the disk
// differed. A failure on any rank ends every rank together.
void resume_everywhere(Trainer& trainer, const std::string& run_dir, dist::Communicator* comm, bool writer,
                       const std::string& name) {
  const int64_t steps = trainer.config().steps;
  auto check_steps = [&] {
    SAGAN_CHECK(trainer.step_count() <= steps,
                "--steps {}: the run in {} is already at step {}; give more steps to continue it", steps, run_dir,
                trainer.step_count());
  };
  std::string chosen;
  dist::run_agreed(comm, [&] {
    // Checked before the checkpoints that failed are renamed: a refused
    // command leaves the run as it was.
    if (writer) chosen = resume_trainer(trainer, run_dir, name, check_steps);
  });
  if (!comm || comm->size() == 1) return;
  chosen = dist::broadcast_text(*comm, chosen);
  dist::run_agreed(comm, [&] {
    if (!writer && !chosen.empty()) trainer.load_checkpoint(chosen);
  });
  dist::check_same_everywhere(comm, fmt::format("step {}", trainer.step_count()), "the steps resumed at");
  // The same path can hold other bytes on another machine (a node-local
  // disk, a lagging network file system): the ranks would train apart,
  // silently but for --check-sync-every. One hash per part, once.
  if (!chosen.empty())
    trainer.check_ranks_in_sync(fmt::format("--resume: after loading {} on every rank,", chosen),
                                "the ranks read different files at that path; give every rank the same run directory "
                                "(a shared file system)");
}

// <run_dir>/classes.txt: the data set's class names in label order, a line
// each (data::Dataset::class_names; folder data sets).
std::string class_names_path(const std::string& run_dir) { return (fs::path(run_dir) / "classes.txt").string(); }

// The class names a run keeps: none for an unconditional run, whose
// labels are not used.
std::vector<std::string> run_class_names(const TrainConfig& cfg, const data::Dataset& dataset) {
  return cfg.unconditional ? std::vector<std::string>{} : dataset.class_names();
}

// A resume's data set names its classes as the run recorded them (a run
// from before the file existed records them now).
void check_class_names(const std::string& run_dir, const std::string& data, const std::vector<std::string>& names) {
  std::error_code ec;
  const std::string path = class_names_path(run_dir);
  if (names.empty() || !fs::exists(path, ec)) return;
  const std::vector<uint8_t> bytes = io::read_file(path);
  std::vector<std::string> recorded;
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  for (std::string line; std::getline(in, line);) recorded.push_back(line);
  for (size_t i = 0; i < std::min(recorded.size(), names.size()); ++i)
    SAGAN_CHECK(recorded[i] == names[i],
                "--resume {}: label {} is class '{}' in this run ({}) and '{}' in {}: class folders renamed or "
                "added would swap the labels the networks learnt; put the folders back as they were",
                run_dir, i, recorded[i], path, names[i], data);
  SAGAN_CHECK(recorded.size() == names.size(), "--resume {}: {} lists {} classes, {} gives {}", run_dir, path,
              recorded.size(), data, names.size());
}

// None (an unconditional run, a data set without names): a file an earlier
// start left is removed, as it would describe another run.
void write_class_names(const std::string& run_dir, const std::vector<std::string>& names) {
  std::error_code ec;
  if (names.empty()) {
    fs::remove(class_names_path(run_dir), ec);
    return;
  }
  std::string text;
  for (const std::string& n : names) text += n + "\n";
  io::write_file_atomic(class_names_path(run_dir), text);
}

// `stepping` turns true as the first step begins: until then a failure
// leaves nothing a user could want (no step, no checkpoint, no sample).
RunResult train_in(TrainConfig cfg, const RunOptions& opt, const std::vector<ConfigChange>& changes,
                   const ConfigSources& sources, bool writer, bool& stepping) {
  const bool resume = !opt.resume_dir.empty();
  dist::Communicator* comm = opt.comm.get();
  // A rank stuck before the first step (a stalled read of its data) would
  // leave the others in their first collective for good.
  std::unique_ptr<dist::StallWatchdog> start_watchdog = make_watchdog(opt.name, comm, nullptr, cfg.dist_timeout, true);
  // Every rank loads its data and finds its device; a failure on one, or
  // ranks that differ, ends them all together before any collective that
  // could wait for the missing one (dist/agree.h).
  std::shared_ptr<data::Dataset> dataset;
  std::string facts;
  dist::run_agreed(comm, [&] {
    if (opt.dataset) {
      dataset = opt.dataset(cfg);
      SAGAN_CHECK(dataset, "RunOptions::dataset: the program's data set factory returned none");
      SAGAN_CHECK(cfg.channels == "auto" || cfg.channels == std::to_string(dataset->channels()),
                  "{} {}: the program's data set '{}' has {} channel(s)",
                  sources.where("channels"),
                  cfg.channels, dataset->name(), dataset->channels());
    } else {
      dataset = make_dataset(cfg);
    }
    cfg.channels = std::to_string(dataset->channels());  // "auto" resolved, for config.json and checkpoints
    // A resume's data set gives the run's classes and channels: checked once
    // here, not by each checkpoint in turn (every one would fail the same
    // way and be reported as damaged).
    if (resume) {
      const int64_t classes = cfg.unconditional ? 0 : dataset->num_classes();
      const std::string data =
          sources.given("data_path") ? sources.where("data_path") + " " + cfg.data_path : "its data set";
      SAGAN_CHECK(classes == cfg.model.num_classes,
                  "--resume {}: the run's model has {} classes and {} gives {}: another --data, or the data changed",
                  cfg.run_dir, cfg.model.num_classes, data, classes);
      SAGAN_CHECK(dataset->channels() == cfg.model.image_channels,
                  "--resume {}: the run's model takes {}-channel images and {} gives {}: another --data or "
                  "--channels, or the data changed",
                  cfg.run_dir, cfg.model.image_channels, data, dataset->channels());
      // Same count, other names: class folders renamed would swap labels.
      if (writer) check_class_names(cfg.run_dir, data, run_class_names(cfg, *dataset));
    }
    // Again, now that the data set's channels are known (FD on RGB data
    // needs Inception weights), naming the settings as the user gave them
    // (the Trainer's own check names them as a program sets them).
    cfg.validate(sources);
    facts = startup_facts(cfg, *dataset, rank_device(cfg, comm, sources));
    check_data_fills_a_batch("", *dataset, cfg.batch_size, cfg.accumulate, comm ? comm->size() : 1);
  });
  dist::check_same_everywhere(comm, facts, "the settings, devices or data sets");
  Trainer trainer(cfg, dataset, DType::F32, opt.comm);
  const TrainConfig& rc = trainer.config();  // with classes and channels resolved
  if (resume) resume_everywhere(trainer, rc.run_dir, comm, writer, opt.name);
  // Ctrl-C while the data loaded and the networks were built: stop before
  // anything is written.
  if (int sig = stop_signal(opt)) {
    start_watchdog.reset();  // no collective follows
    if (writer && opt.progress) fmt::print("{}: signal {} before the first step: stopped\n", opt.name, sig);
    return {rc.run_dir, sig, false};
  }
  RunOutputs out(trainer, writer, resume, changes, opt.progress, opt.name);
  if (writer) write_class_names(rc.run_dir, run_class_names(rc, *dataset));
  std::unique_ptr<quality::FdMonitor> fd;
  if (writer && rc.fd_every > 0)
    fd = std::make_unique<quality::FdMonitor>(rc, dataset, rc.run_dir, trainer.device(), opt.progress, opt.name);
  if (opt.progress) announce(trainer, *dataset, resume, opt.name);

  // A launcher's ranks write to a terminal of its own (Open MPI gives each a
  // pseudo-terminal) whatever mpirun's output is: a log file of rewritten
  // lines ("\r") would hold one line for the whole run. Launched: a line each.
  const bool tty = ::isatty(STDOUT_FILENO) && !dist::detect_launch().launched;
  using clock = std::chrono::steady_clock;
  auto window_start = clock::now();
  int64_t window_steps = 0;
  // The ETA's clock: every second since the first step ended (its one-time
  // costs aside), FD, checkpoints and sample grids included, so that it
  // tells when the run ends, where it/s tells the training speed.
  std::optional<clock::time_point> eta_start;
  const int64_t start_step = trainer.step_count();
  // The ranks start their clocks together: rank 0 alone made the FD
  // reference and timed a step for the ETA, while the others went ahead.
  if (comm && comm->size() > 1) comm->barrier();
  start_watchdog.reset();
  // Declared after the trainer: gone before its communicators, which it polls.
  std::unique_ptr<dist::StallWatchdog> watchdog = make_watchdog(
      opt.name, comm, trainer.data_parallel() ? &trainer.data_parallel()->comm() : comm, rc.dist_timeout, false);
  // The run's own files that fail to be written in the loop (a full disk, a
  // folder made read-only): the error names the file; this adds where the
  // run stands and how to continue once the cause is fixed.
  auto writing = [&](const std::function<void()>& write) {
    const std::string then = fmt::format("; fix the cause, then: {}",
                                         resume_command(rc.run_dir, rc.world_size, rc.dataset));
    try {
      write();
    } catch (const dist::AgreedError& e) {  // the same on every rank: stays agreed
      throw dist::AgreedError(with_run_dir(e, rc.run_dir, opt.name, then));
    } catch (const Error& e) {
      throw Error(with_run_dir(e, rc.run_dir, opt.name, then));
    }
  };
  // A grid due at the resumed checkpoint's step that was not written (the
  // run stopped between the two): written now, or it never would be.
  if (resume && trainer.step_count() > 0 && trainer.step_count() % rc.sample_every == 0 &&
      !out.has_samples(trainer.step_count()))
    writing([&] { out.save_samples(trainer); });
  stepping = true;
  while (trainer.step_count() < rc.steps) {
    StepStats s = guarded_step(trainer, rc.run_dir, opt.name, [&]() -> std::string {
      if (!writer) return "rank 0 writes the checkpoints: the steps since the newest are lost";
      watchdog.reset();  // the save may take longer than --dist-timeout; no collective follows
      if (trainer.step_count() == start_step) return "no step was made since this start";
      if (trainer.step_count() % rc.checkpoint_every == 0) return "no step since it";
      out.save_checkpoint(trainer);
      return fmt::format("saved just now, at step {}: nothing was lost", trainer.step_count());
    });
    if (watchdog) watchdog->beat();
    if (s.skipped && writer)
      fmt::print(stderr, "{}{}: warning: {}; update dropped (--on-nan skip, {} in a row)\n",
                 tty && opt.progress ? "\n" : "", opt.name, trainer.nan_guard().message(),
                 trainer.nan_guard().skipped_in_a_row());
    ++window_steps;
    if (!eta_start) eta_start = clock::now();
    const double elapsed = std::chrono::duration<double>(clock::now() - window_start).count();
    if (opt.progress && s.step == start_step + 1 && s.step % rc.log_every != 0 && s.step != rc.steps)
      // A first sign of life (a CPU step can take seconds, log_every many of
      // them a minute or more); metrics rows still come every log_every steps.
      show(fmt::format("step {}/{} | {:.2f} s for the first step | loss_d {:.4f} loss_g {:.4f}", s.step, rc.steps,
                       elapsed, s.loss_d, s.loss_g),
           tty);
    if (s.step % rc.log_every == 0 || s.step == rc.steps) {
      const double it_s = window_steps / std::max(elapsed, 1e-9);
      window_steps = 0;
      const int64_t eta_steps = s.step - start_step - 1;  // every step after the first adds one
      const double s_per_step =
          eta_steps > 0 ? std::chrono::duration<double>(clock::now() - *eta_start).count() / eta_steps : 1.0 / it_s;
      double fd_value;
      const io::CsvRow row = metrics_row(trainer, s, it_s, fd.get(), fd_value);  // FD: not a write
      writing([&] { out.log(row, s.step); });
      if (opt.progress) {
        std::string line = fmt::format(
            "step {}/{} | {:.2f} it/s | ETA {} | loss_d {:.4f} loss_g {:.4f} | D(x) {:.3f} D(G(z)) {:.3f}", s.step,
            rc.steps, it_s, hms((rc.steps - s.step) * s_per_step), s.loss_d, s.loss_g, s.d_real, s.d_fake);
        if (!std::isnan(fd_value)) line += fmt::format(" | FD {:.3f}", fd_value);
        if (s.skipped_steps > 0) line += fmt::format(" | {} skipped", s.skipped_steps);
        show(line, tty);
      }
      window_start = clock::now();  // FD, CSV and TensorBoard time stays out of it/s
    }
    // The checkpoint before the grid of the same step: a grid that cannot be
    // written then costs no steps.
    if (s.step % rc.checkpoint_every == 0) writing([&] { out.save_checkpoint(trainer); });
    if (s.step % rc.sample_every == 0) writing([&] { out.save_samples(trainer); });
    if (int sig = stop_signal(opt)) {
      watchdog.reset();  // no collective follows: rank 0's checkpoint may take what it takes
      if (opt.progress)
        fmt::print("{}{}: signal {} at step {}: saving a checkpoint\n", tty ? "\n" : "", opt.name, sig, s.step);
      if (s.step % rc.checkpoint_every != 0) writing([&] { out.save_checkpoint(trainer); });
      if (writer)
        fmt::print("{}: stopped; continue with: {}\n", opt.name, resume_command(rc.run_dir, rc.world_size, rc.dataset));
      return {rc.run_dir, sig, true};
    }
  }
  watchdog.reset();  // as above
  if (trainer.step_count() % rc.checkpoint_every != 0 || trainer.step_count() == start_step)
    writing([&] { out.save_checkpoint(trainer); });
  if (trainer.step_count() % rc.sample_every != 0 || !out.has_samples(trainer.step_count()))
    writing([&] { out.save_samples(trainer); });
  if (opt.progress)
    fmt::print("{}{}: done, {} steps; run dir {}\n", tty ? "\n" : "", opt.name, trainer.step_count(), rc.run_dir);
  return {rc.run_dir, 0, true};
}

}  // namespace

RunResult run_training(TrainConfig cfg, const RunOptions& opt) {
  const bool writer = !opt.comm || opt.comm->rank() == 0;  // rank 0 alone writes
  SignalScope signals(writer && opt.progress,
                      opt.name);  // from the start: a Ctrl-C while starting up stops cleanly too
  std::vector<ConfigChange> changes;
  RunDirLock lock;
  std::vector<std::string> made;
  bool stepping = false;
  // The directory this start made, removed while still locked (another
  // process waiting for it then finds none), unless a step began.
  auto tidy = [&] {
    if (made.empty() || !lock.held() || stepping) return;
    remove_made_dirs(made);
    lock = RunDirLock();
  };
  try {
    ConfigSources sources;
    cfg = settle_config(std::move(cfg), opt, writer, changes, lock, made, sources);
    RunResult r = train_in(std::move(cfg), opt, changes, sources, writer, stepping);
    if (!r.started) tidy();
    return r;
  } catch (...) {
    tidy();
    throw;
  }
}

}  // namespace sagan
