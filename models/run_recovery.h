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

// metrics.csv of a run resumed at `step`: rows logged after it (by the
// interrupted run, past its last checkpoint) are dropped, and a last line cut
// short by a crash with them, so the resumed run logs each step once. The
// file is rewritten atomically, and only when something is dropped; returns
// the number of rows dropped. A missing file is left missing.
int64_t drop_metrics_rows_after(const std::string& csv_path, int64_t step);

}  // namespace sagan
