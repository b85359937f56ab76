// DataLoader: turns a Dataset into an endless stream of training batches.
// A background thread (fanning each batch out over decode_threads threads)
// decodes and transforms examples and keeps up to `prefetch` batches ready,
// so a training step does not wait on disk. The batch sequence is a pure
// function of (seed, epoch, index in epoch): state() after any batch, given
// to set_state() (in this or a new loader over the same data set and
// options), continues exactly as an uninterrupted run.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sagan/core/tensor.h"
#include "sagan/models/data/dataset.h"

namespace sagan::data {

struct Batch {
  Tensor images;  // (B, C, H, W) float32 on the CPU, values in [-1, 1]
  Tensor labels;  // (B) int64
};

struct LoaderOptions {
  int64_t batch_size = 64;
  // Side of the square output. An image of another size is center-cropped to
  // a square and resized: area averaging down, `upscale` up (io::fit_square).
  // 0 keeps the stored size, which the data set must then report as fixed.
  int64_t resolution = 0;
  io::Upscale upscale = io::Upscale::bilinear;
  bool shuffle = true;    // a fresh permutation every epoch
  bool hflip = false;     // mirror each example with probability 1/2
  bool drop_last = true;  // no short batch at the end of an epoch
  uint64_t seed = 0;
  int64_t prefetch = 4;  // batches decoded ahead
  // Threads that decode the examples of one batch in parallel; more than 1
  // pays off for folders of JPEGs, not for in-memory data sets.
  int64_t decode_threads = 1;
  // Data parallelism (docs/distributed.md): shard_count ranks read one
  // stream of global batches of shard_count x batch_size examples from the
  // same permutations, and rank shard_index takes examples
  // [shard_index x batch_size, (shard_index + 1) x batch_size) of each. The
  // state (epoch, index in the permutation) is the global stream's, the same
  // on every rank. Needs drop_last when shard_count > 1.
  int64_t shard_index = 0, shard_count = 1;
};

// Position of the stream: the next batch starts at example `index` of the
// permutation of `epoch`, drawn from `seed`.
struct LoaderState {
  int64_t epoch = 0;
  int64_t index = 0;
  uint64_t seed = 0;
  friend bool operator==(const LoaderState&, const LoaderState&) = default;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();  // stops and joins the worker
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch; epochs follow one another without end. An exception
  // raised while decoding is rethrown here (and on every later call until
  // set_state()).
  Batch next();
  LoaderState state() const;
  // Restarts the stream at s (its seed replaces options().seed); throws,
  // keeping the stream where it was, when the data set does not hold s.
  void set_state(const LoaderState& s);
  // Whether the data set holds position s: an index inside it and, with
  // drop_last, a whole batch from there (a smaller data set may not).
  bool holds(const LoaderState& s) const { return position_problem(s).empty(); }

  int64_t batches_per_epoch() const;
  // Examples the stream advances per batch: batch_size x shard_count.
  int64_t global_batch() const { return opt_.batch_size * opt_.shard_count; }
  int64_t channels() const { return channels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  const LoaderOptions& options() const { return opt_; }
  const Dataset& dataset() const { return *ds_; }

 private:
  struct Item {
    Batch batch;
    LoaderState after;
    std::exception_ptr error;
  };
  void start(const LoaderState& s);
  std::string position_problem(const LoaderState& s) const;  // "" when the data set holds s
  void stop();
  void worker(LoaderState cursor);
  Batch make_batch(const LoaderState& at, const std::vector<int64_t>& perm, int64_t count) const;
  // ds_->get(idx), any other exception than a sagan::Error turned into one.
  Example get_example(int64_t idx) const;
  std::vector<int64_t> permutation(int64_t epoch, uint64_t seed) const;
  bool flipped(int64_t epoch, int64_t position, uint64_t seed) const;

  std::shared_ptr<const Dataset> ds_;
  LoaderOptions opt_;
  int64_t channels_ = 0, height_ = 0, width_ = 0;

  mutable std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<Item> queue_;
  bool stop_ = false;
  LoaderState state_;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace sagan::data
