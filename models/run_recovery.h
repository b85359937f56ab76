// Putting a run directory back in order before a run starts or resumes
// (docs/reliability.md, "Run directories"): what a crash, a kill or a
// diverged run leaves behind must neither block the next start nor be logged
// twice.
#pragma once
#include <cstdint>
#include <string>

namespace sagan {

// A directory that holds a run's config.json but no checkpoint: a run that
// failed before its first checkpoint (bad image, full disk, killed early).
// A new run may start over in it, --resume starts it from step 0.
bool run_never_checkpointed(const std::string& run_dir);

// Why <run_dir>/config.json is not a sagan-train run's config (its parse
// error), or "" when it is one or there is none: a directory holding some
// other program's config.json is not a run to start over in.
std::string foreign_config_problem(const std::string& run_dir);

// Why a new run may not start in <run_dir> although no config.json is
// there, or "": a directory that holds files but neither a config.json nor
// a checkpoint is not a run at all (the user's own folder), and a start
// would overwrite its metrics.csv and delete its samples/step_*.png. Names
// up to three of its entries. An absent or empty directory (a lock file
// aside) is fine; one with a config.json is for foreign_config_problem.
std::string stray_files_problem(const std::string& run_dir);

// An exclusive lock on a run directory (flock on <run_dir>/.lock) for as
// long as the object lives: two processes training into one directory
// would interleave metrics.csv rows and overwrite each other's checkpoints.
// The kernel drops the lock when the process ends, however it ends. On a
// file system that refuses locks it warns and holds nothing.
class RunDirLock {
 public:
  RunDirLock() = default;
  // Throws, naming the directory, when another process holds it.
  explicit RunDirLock(const std::string& run_dir);
  ~RunDirLock();
  RunDirLock(RunDirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunDirLock& operator=(RunDirLock&& o) noexcept;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// metrics.csv of a run resumed at `step`: rows logged after it (by the
// interrupted run, past its last checkpoint) are dropped, and a last line cut
// short by a crash with them, so the resumed run logs each step once. The
// file is rewritten atomically, and only when something is dropped; returns
// the number of rows dropped. A missing file is left missing.
int64_t drop_metrics_rows_after(const std::string& csv_path, int64_t step);

// <run_dir>/samples of a run (re)starting at `step`: the sample grids
// samples/step_<digits>.png of later steps came from the interrupted
// attempt's lost future (or from a run that never reached a checkpoint and
// is started over) and would stand beside the new run's grids as if they
// were its own. They are removed; other files are left. Returns how many.
int64_t drop_samples_after(const std::string& run_dir, int64_t step);

}  // namespace sagan
