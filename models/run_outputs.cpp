#include "sagan/models/run_outputs.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/image.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/run_recovery.h"
#include "sagan/models/trainer.h"

namespace sagan {

namespace fs = std::filesystem;

namespace {

void record_changes(const std::vector<ConfigChange>& changes, const fs::path& run, int64_t step, bool progress,
                    const std::string& name) {
  if (changes.empty()) return;
  std::string line = fmt::format("step {}:", step);
  for (const ConfigChange& c : changes) line += fmt::format(" {} {} -> {} ({});", c.key, c.from, c.to, c.where);
  line.back() = '\n';
  if (progress) fmt::print("{}: --resume changes {}", name, line.substr(line.find(':') + 2));
  std::ofstream log(run / "config_changes.log", std::ios::app);
  log << line;
  SAGAN_CHECK(log.good(), "{}: cannot append the resume's changes", (run / "config_changes.log").string());
}

}  // namespace

RunOutputs::RunOutputs(const Trainer& trainer, bool writer, bool resumed, const std::vector<ConfigChange>& changes,
                       bool progress, const std::string& name)
    : writer_(writer), name_(name) {
  const TrainConfig& rc = trainer.config();
  run_dir_ = rc.run_dir;
  keep_ = rc.keep_checkpoints;
  // Fixed latents and classes for every sample grid of the run: one column
  // per class (10 columns unconditional), sample_per_class rows.
  const int64_t K = rc.model.num_classes, rows = rc.sample_per_class;
  cols_ = K > 0 ? K : 10;
  Rng sample_gen(rc.seed + 1);
  fixed_z_ = Tensor::randn({rows * cols_, rc.model.z_dim}, sample_gen);
  std::vector<int64_t> ys(static_cast<size_t>(rows * cols_));
  for (size_t i = 0; i < ys.size(); ++i) ys[i] = K > 0 ? static_cast<int64_t>(i) % K : 0;
  if (K > 0) fixed_y_ = Tensor::from_vector(ys, {rows * cols_});
  if (!writer_) return;

  const fs::path run(run_dir_);
  const int64_t step = trainer.step_count();
  // A fresh start in a directory whose earlier attempt never reached a
  // checkpoint: that attempt's resume log and TensorBoard events describe a
  // run that is gone (TensorBoard would draw its points as this run's).
  std::error_code ec;
  if (!resumed) {
    fs::remove(run / "config_changes.log", ec);
    if (fs::is_directory(run / "tb", ec))
      for (const fs::directory_entry& e : io::list_directory(run / "tb", "TensorBoard folder"))
        if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) fs::remove(e.path(), ec);
  }
  record_changes(changes, run, step, progress, name_);
  fs::create_directories(run / "checkpoints");
  fs::create_directories(run / "samples");
  io::write_file_atomic((run / "config.json").string(), rc.to_json());
  // Rows and events past the checkpoint resumed from were logged by the
  // interrupted run: dropped from the CSV, purged in TensorBoard.
  if (resumed) drop_metrics_rows_after((run / "metrics.csv").string(), step);
  // Their sample grids too (TensorBoard's copies are purged with the rest).
  if (const int64_t late = drop_samples_after(run_dir_, step); late > 0 && progress)
    fmt::print("{}: removed {} sample grid(s) of steps after {} that the earlier attempt left in {}\n", name_, late,
               step, (run / "samples").string());
  csv_.emplace((run / "metrics.csv").string(), resumed);
  tb_.emplace((run / "tb").string());
  tb_->add_session_start(step + 1);
}

std::optional<float> metric_scalar(const std::string& text) {
  char* end = nullptr;
  const double d = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
  constexpr double kMax = std::numeric_limits<float>::max();
  if (std::isfinite(d) && std::abs(d) > kMax)
    return d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

void RunOutputs::log(const io::CsvRow& row, int64_t step) {
  if (!writer_) return;
  csv_->write(row);
  for (auto& [name, v] : row) {
    if (name == "step") continue;
    if (const std::optional<float> value = metric_scalar(v.text)) tb_->add_scalar(name, *value, step);
  }
  tb_->flush();
}

void RunOutputs::save_samples(Trainer& trainer) {
  if (!writer_) return;
  io::Image grid = io::make_image_grid(trainer.sample(fixed_z_, fixed_y_), cols_);
  io::write_png(samples_path(trainer.step_count()), grid);
  tb_->add_image("samples", grid, trainer.step_count());  // the same grid in TensorBoard's Images tab
  tb_->flush();
}

std::string RunOutputs::samples_path(int64_t step) const {
  return (fs::path(run_dir_) / "samples" / fmt::format("step_{:08}.png", step)).string();
}

bool RunOutputs::has_samples(int64_t step) const {
  std::error_code ec;
  return !writer_ || fs::exists(samples_path(step), ec);
}

void RunOutputs::save_checkpoint(const Trainer& trainer) {
  if (!writer_) return;
  // The rows and events up to this step reach the disk first: a resume from
  // this checkpoint never logs them again. A file system that cannot fsync
  // them (some FUSE and network mounts) is warned of once; training goes on.
  try {
    csv_->sync();
    tb_->sync();
  } catch (const Error& e) {
    if (!sync_warned_)
      fmt::print(stderr, "{}: warning: {} (the metrics may lag the checkpoints after a crash)\n", name_, e.what());
    sync_warned_ = true;
  }
  trainer.save_checkpoint(checkpoint_path(run_dir_, trainer.step_count()));
  rotate_checkpoints(run_dir_, keep_);
}

}  // namespace sagan
