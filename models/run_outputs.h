// What a training run writes into its run directory (docs/checkpoints.md,
// docs/training.md): config.json, metrics.csv, the TensorBoard events,
// sample grids and checkpoints. Under data parallelism only rank 0 writes:
// every method is a no-op on the other ranks, so the run loop calls them
// unconditionally.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sagan/core/io/csv.h"
#include "sagan/core/io/tensorboard.h"
#include "sagan/models/train_config.h"

namespace sagan {

class Trainer;

// A metrics cell as TensorBoard's float, or nothing for a cell that is not
// a number (it stays out of TensorBoard). Not std::stof, which throws
// outside float's range: --lr-g 1e-39 ended the run at its first row.
// Beyond float, a value is the infinity of its sign; below, it rounds to 0
// or a subnormal.
std::optional<float> metric_scalar(const std::string& text);

class RunOutputs {
 public:
  // Opens the outputs of `trainer`'s run directory (config() names it) on
  // the writing rank: creates checkpoints/ and samples/, writes
  // config.json, logs `changes` (a resume's settings) to
  // config_changes.log. A resumed run (`resumed`) keeps metrics.csv up to the
  // trainer's step, dropping the rows the interrupted run wrote past its
  // checkpoint, and tells TensorBoard to purge those events.
  // `name`: how the run names itself in what it prints (RunOptions::name).
  RunOutputs(const Trainer& trainer, bool writer, bool resumed, const std::vector<ConfigChange>& changes, bool progress,
             const std::string& name = "sagan-train");

  bool writer() const { return writer_; }
  // One metrics row: to metrics.csv and, each value but the step, as a
  // TensorBoard scalar.
  void log(const io::CsvRow& row, int64_t step);
  // The EMA generator's grid of the run's fixed latents and classes, as
  // samples/step_<step>.png and a TensorBoard image.
  void save_samples(Trainer& trainer);
  // Whether samples/step_<step>.png is there (a writer's view; true on the
  // other ranks, which write none): a resume writes a grid that was due at
  // its checkpoint's step but did not get written.
  bool has_samples(int64_t step) const;
  // checkpoints/step_<step>.safetensors, then rotation to keep_checkpoints.
  void save_checkpoint(const Trainer& trainer);

 private:
  std::string samples_path(int64_t step) const;  // samples/step_%08d.png
  bool writer_;
  bool sync_warned_ = false;  // an fsync of the metrics failed once (warned)
  std::string run_dir_;
  std::string name_;  // RunOptions::name
  int64_t cols_ = 0, keep_ = 0;
  Tensor fixed_z_, fixed_y_;
  std::optional<io::CsvWriter> csv_;
  std::optional<io::SummaryWriter> tb_;
};

}  // namespace sagan
