#include "sagan/models/run_recovery.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "sagan/core/error.h"
#include "sagan/core/io/atomic_file.h"
#include "sagan/core/warning.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/train_config.h"

namespace sagan {

namespace fs = std::filesystem;

bool run_never_checkpointed(const std::string& run_dir) {
  return fs::exists(fs::path(run_dir) / "config.json") && list_checkpoints(run_dir).empty();
}

std::string foreign_config_problem(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "config.json").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return "";  // an unusable name is reported by the directory checks
  try {
    TrainConfig cfg;
    read_config_file(path, cfg, nullptr);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string stray_files_problem(const std::string& run_dir) {
  const fs::path dir(run_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::exists(dir / "config.json", ec)) return "";
  if (!list_checkpoints(run_dir).empty()) return "";  // a run that lost its config.json: refused as a run
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename() != ".lock") names.push_back(entry.path().filename().string());
  if (ec || names.empty()) return "";     // an unreadable directory is reported by the directory checks
  std::sort(names.begin(), names.end());  // the same message every time
  std::string listed;
  for (size_t i = 0; i < std::min<size_t>(names.size(), 3); ++i)
    listed += fmt::format("{}'{}'", i > 0 ? ", " : "", names[i]);
  if (names.size() > 3) listed += fmt::format(" and {} more", names.size() - 3);
  return fmt::format("holds {} but no config.json: not a sagan-train run, and a new run would overwrite its files",
                     listed);
}

RunDirLock::RunDirLock(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  SAGAN_CHECK(fd_ >= 0, "{}: cannot open the run's lock file: {}", path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    // Some shared file systems refuse locks (Lustre without -o flock, NFS
    // mounted nolock): the run goes on, unguarded, and says so.
    if (err == ENOSYS || err == ENOLCK || err == EOPNOTSUPP || err == EINVAL) {
      warn(fmt::format("{}: this file system does not lock files ({}); nothing keeps a second process out of {}",
                       path, std::strerror(err), run_dir));
      return;
    }
    SAGAN_CHECK(err != EWOULDBLOCK,
                "run dir {} is in use by another sagan-train process (it holds {}); wait for it "
                "to end, or stop it (Ctrl-C saves a checkpoint; a job under mpirun: kill -USR1 <mpirun's pid>)",
                run_dir, path);
    SAGAN_FAIL("{}: cannot lock: {}", path, std::strerror(err));
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

RunDirLock& RunDirLock::operator=(RunDirLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

int64_t drop_metrics_rows_after(const std::string& csv_path, int64_t step) {
  if (!fs::exists(csv_path)) return 0;
  std::vector<uint8_t> bytes = io::read_file(csv_path);
  const std::string text(bytes.begin(), bytes.end());
  std::string kept;
  int64_t dropped = 0;
  size_t pos = 0;
  for (bool header = true; pos < text.size(); header = false) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // cut short by a crash: dropped
    const std::string line = text.substr(pos, nl + 1 - pos);
    pos = nl + 1;
    if (!header) {
      // The first column is the step (models/train_run.cpp writes it first).
      const std::string cell = line.substr(0, line.find_first_of(",\n"));
      int64_t row_step = 0;
      const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), row_step);
      SAGAN_CHECK(ec == std::errc() && end == cell.data() + cell.size(),
                  "{}: a row whose first column is not a step: '{}'", csv_path, line.substr(0, line.size() - 1));
      if (row_step > step) {
        ++dropped;
        continue;
      }
    }
    kept += line;
  }
  if (kept.size() != text.size()) io::write_file_atomic(csv_path, kept);
  return dropped;
}

int64_t drop_samples_after(const std::string& run_dir, int64_t step) {
  const fs::path dir = fs::path(run_dir) / "samples";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> late;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::optional<int64_t> grid_step = step_in_name(entry.path().filename().string(), ".png");
    std::error_code stat_ec;  // an entry that cannot be looked at is not ours to remove
    if (grid_step && *grid_step > step && entry.is_regular_file(stat_ec)) late.push_back(entry.path());
  }
  SAGAN_CHECK(!ec, "{}: cannot list the sample grids: {}", dir.string(), ec.message());
  for (const fs::path& p : late) {
    fs::remove(p, ec);
    SAGAN_CHECK(!ec, "{}: cannot remove this sample grid of a step after {}: {}", p.string(), step, ec.message());
  }
  return static_cast<int64_t>(late.size());
}

}  // namespace sagan
