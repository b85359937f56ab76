// DataLoader: deterministic order, background decoding; see loader.h.
#include "sagan/models/data/loader.h"

#include <exception>
#include <numeric>

#include "sagan/core/hash.h"
#include "sagan/core/rng.h"

namespace sagan::data {

namespace {

// Independent streams per (seed, epoch, purpose): permutation and flips.
uint64_t stream_key(uint64_t seed, int64_t epoch, uint64_t purpose) {
  return splitmix64(splitmix64(seed ^ purpose) + static_cast<uint64_t>(epoch));
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : ds_(std::move(dataset)), opt_(options) {
  SAGAN_CHECK(ds_ != nullptr, "DataLoader: no data set");
  const int64_t n = ds_->size();
  SAGAN_CHECK(opt_.batch_size > 0, "DataLoader({}): batch size must be positive, got {}", ds_->name(), opt_.batch_size);
  SAGAN_CHECK(n > 0, "DataLoader({}): the data set is empty", ds_->name());
  // Every label must lie in [0, num_classes): with none, the first batch
  // would fail on a label no example can have.
  SAGAN_CHECK(ds_->num_classes() >= 1,
              "DataLoader({}): the data set reports {} classes; it needs at least one, every label in [0, "
              "num_classes) (unlabelled images: 1 class, every label 0, and TrainConfig::unconditional to train "
              "without labels)",
              ds_->name(), ds_->num_classes());
  SAGAN_CHECK(opt_.shard_count >= 1 && opt_.shard_index >= 0 && opt_.shard_index < opt_.shard_count,
              "DataLoader({}): shard {} of {} does not exist", ds_->name(), opt_.shard_index, opt_.shard_count);
  SAGAN_CHECK(opt_.shard_count == 1 || opt_.drop_last, "DataLoader({}): sharding needs drop_last", ds_->name());
  SAGAN_CHECK(!opt_.drop_last || n >= global_batch(),
              "DataLoader({}): {} examples are fewer than one batch of {}{} with drop_last", ds_->name(), n,
              global_batch(),
              opt_.shard_count > 1 ? fmt::format(" ({} ranks x {})", opt_.shard_count, opt_.batch_size) : "");
  SAGAN_CHECK(opt_.resolution >= 0, "DataLoader({}): resolution must be >= 0, got {}", ds_->name(), opt_.resolution);
  SAGAN_CHECK(opt_.prefetch >= 1, "DataLoader({}): prefetch must be >= 1, got {}", ds_->name(), opt_.prefetch);
  SAGAN_CHECK(opt_.decode_threads >= 1, "DataLoader({}): decode_threads must be >= 1, got {}", ds_->name(),
              opt_.decode_threads);
  channels_ = ds_->channels();
  if (opt_.resolution > 0) {
    height_ = width_ = opt_.resolution;
  } else {
    SAGAN_CHECK(
        ds_->height() > 0 && ds_->width() > 0,
        "DataLoader({}): images vary in size, so a resolution must be given (resolution 0 keeps the stored size)",
        ds_->name());
    height_ = ds_->height();
    width_ = ds_->width();
  }
  start({0, 0, opt_.seed});
}

DataLoader::~DataLoader() { stop(); }

int64_t DataLoader::batches_per_epoch() const {
  int64_t n = ds_->size(), b = global_batch();
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::permutation(int64_t epoch, uint64_t seed) const {
  std::vector<int64_t> perm(static_cast<size_t>(ds_->size()));
  std::iota(perm.begin(), perm.end(), 0);
  if (!opt_.shuffle) return perm;
  Rng gen(stream_key(seed, epoch, 0x5045524Dull));  // Fisher-Yates
  for (size_t i = perm.size(); i-- > 1;) std::swap(perm[i], perm[gen.below(i + 1)]);
  return perm;
}

bool DataLoader::flipped(int64_t epoch, int64_t position, uint64_t seed) const {
  if (!opt_.hflip) return false;
  // Counter-based, so a resumed stream needs no replay of earlier draws.
  return philox4x32(static_cast<uint64_t>(position), stream_key(seed, epoch, 0x464C4950ull))[0] & 1u;
}

Example DataLoader::get_example(int64_t idx) const {
  // A data set written by the program that embeds the engine may throw what
  // it likes (std::ios_base::failure, its own errors); it reaches the
  // trainer as a sagan::Error naming the data set and the example, so
  // Trainer::step reports it as InputsNotDrawn, as it does an unreadable file.
  try {
    return ds_->get(idx);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    SAGAN_FAIL("DataLoader({}): example {} could not be read: {}", ds_->name(), idx, e.what());
  }
}

Batch DataLoader::make_batch(const LoaderState& at, const std::vector<int64_t>& perm, int64_t count) const {
  const int64_t C = channels_, H = height_, W = width_, plane = H * W;
  Tensor images = Tensor::empty({count, C, H, W}, DType::F32);
  std::vector<int64_t> labels(static_cast<size_t>(count));
  float* out = images.data<float>();
  // Example k of the batch depends only on (seed, epoch, position), so any
  // split of the batch over threads gives the same result.
  auto fill = [&](int64_t k) {
    const int64_t pos = at.index + opt_.shard_index * opt_.batch_size + k, idx = perm[static_cast<size_t>(pos)];
    Example ex = get_example(idx);
    io::Image& img = ex.image;
    SAGAN_CHECK(img.channels == C, "DataLoader({}): example {} has {} channels, the data set reports {}", ds_->name(),
                idx, img.channels, C);
    SAGAN_CHECK(ex.label >= 0 && ex.label < ds_->num_classes(),
                "DataLoader({}): example {} has label {} outside [0, {})", ds_->name(), idx, ex.label,
                ds_->num_classes());
    io::ImageF f;
    if (img.height == H && img.width == W) {
      f = io::to_float(img);
    } else {
      SAGAN_CHECK(opt_.resolution > 0, "DataLoader({}): example {} is {}x{}, expected {}x{}", ds_->name(), idx,
                  img.height, img.width, H, W);
      f = io::fit_square(img, H, opt_.upscale);
    }
    const bool flip = flipped(at.epoch, pos, at.seed);
    float* dst = out + k * C * plane;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const float* px = &f.pixels[static_cast<size_t>((y * W + (flip ? W - 1 - x : x)) * C)];
        // [0, 255] -> [-1, 1]
        for (int64_t c = 0; c < C; ++c) dst[c * plane + y * W + x] = px[c] / 127.5f - 1.0f;
      }
    labels[static_cast<size_t>(k)] = ex.label;
  };
  const int64_t nthreads = std::min(opt_.decode_threads, count);
  if (nthreads <= 1) {
    for (int64_t k = 0; k < count; ++k) fill(k);
  } else {
    std::vector<std::exception_ptr> errors(static_cast<size_t>(nthreads));
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < nthreads; ++t)
      pool.emplace_back([&, t] {
        try {
          for (int64_t k = t; k < count; k += nthreads) fill(k);
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  return {images, Tensor::from_vector(labels, {count})};
}

void DataLoader::worker(LoaderState cur) {
  const int64_t n = ds_->size();
  std::vector<int64_t> perm;
  int64_t perm_epoch = -1;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      space_.wait(lock, [&] { return stop_ || static_cast<int64_t>(queue_.size()) < opt_.prefetch; });
      if (stop_) return;
    }
    Item item;
    try {
      if (perm_epoch != cur.epoch) {
        perm = permutation(cur.epoch, cur.seed);
        perm_epoch = cur.epoch;
      }
      const int64_t count = std::min(opt_.batch_size, n - cur.index);  // sharded: always batch_size (drop_last)
      item.batch = make_batch(cur, perm, count);
      cur.index += std::min(global_batch(), n - cur.index);
      if (cur.index >= n || (opt_.drop_last && n - cur.index < global_batch())) {
        cur.epoch += 1;
        cur.index = 0;
      }
      item.after = cur;
    } catch (...) {
      item.error = std::current_exception();
    }
    bool failed = item.error != nullptr;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      queue_.push_back(std::move(item));
    }
    ready_.notify_one();
    if (failed) return;
  }
}

std::string DataLoader::position_problem(const LoaderState& s) const {
  const int64_t n = ds_->size();
  if (s.epoch < 0 || s.index < 0 || s.index >= n)
    return fmt::format("state (epoch {}, index {}) is outside a data set of {} examples", s.epoch, s.index, n);
  if (opt_.drop_last && n - s.index < global_batch())
    return fmt::format("state index {} leaves less than one batch of {} in an epoch of {} (drop_last)", s.index,
                       global_batch(), n);
  return "";
}

void DataLoader::start(const LoaderState& s) {
  const std::string problem = position_problem(s);
  SAGAN_CHECK(problem.empty(), "DataLoader({}): {}", ds_->name(), problem);
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    queue_.clear();
    error_ = nullptr;
    state_ = s;
  }
  thread_ = std::thread([this, s] { worker(s); });
}

void DataLoader::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  space_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Batch DataLoader::next() {
  std::unique_lock lock(mu_);
  if (error_) std::rethrow_exception(error_);
  ready_.wait(lock, [&] { return !queue_.empty(); });
  Item item = std::move(queue_.front());
  queue_.pop_front();
  if (item.error) {
    error_ = item.error;
    std::rethrow_exception(error_);
  }
  state_ = item.after;
  lock.unlock();
  space_.notify_one();
  return std::move(item.batch);
}

LoaderState DataLoader::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void DataLoader::set_state(const LoaderState& s) {
  stop();
  LoaderOptions o = opt_;
  opt_.seed = s.seed;
  try {
    start(s);
  } catch (...) {
    opt_ = o;
    start(state_);  // keep a working stream at the old position
    throw;
  }
}

}  // namespace sagan::data
