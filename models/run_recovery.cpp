#include "models/run_recovery.h"

#include <charconv>
#include <filesystem>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "models/checkpoint_file.h"

namespace sagan {

namespace fs = std::filesystem;

bool run_never_checkpointed(const std::string& run_dir) {
  return fs::exists(fs::path(run_dir) / "config.json") && list_checkpoints(run_dir).empty();
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

}  // namespace sagan
