#include "sagan/models/quality/evaluate.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "sagan/core/autograd.h"
#include "sagan/core/hash.h"
#include "sagan/core/io/image.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"
#include "sagan/models/quality/fmnist_classifier.h"
#include "sagan/models/quality/inception.h"

namespace sagan::quality {

namespace fs = std::filesystem;

namespace {

// HWC uint8 -> CHW [-1, 1] with the training loader's geometry.
void to_chw(const io::Image& src, int64_t channels, int64_t resolution, io::Upscale upscale, const std::string& what,
            int64_t H, int64_t W, float* dst) {
  io::Image img = src.channels == channels ? src : io::convert_channels(src, channels);
  io::ImageF f;
  if (img.height == H && img.width == W) {
    f = io::to_float(img);
  } else {
    // Height x width, as every other size sagan-eval names.
    SAGAN_CHECK(resolution > 0, "{} is {}x{} (height x width), expected {}x{} (pass --resolution to resize)", what,
                img.height, img.width, H, W);
    f = io::fit_square(img, H, upscale);
  }
  const int64_t plane = H * W;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < channels; ++c)
        dst[c * plane + y * W + x] = f.pixels[static_cast<size_t>((y * W + x) * channels + c)] / 127.5f - 1.0f;
}

// (n, channels, H, W) float32 images decoded in parallel: decode(k, dst)
// writes image k. The first error (prefixed) is thrown after the loop, since
// exceptions may not leave an OpenMP region.
template <class Decode>
Tensor decode_batch(int64_t n, int64_t channels, int64_t H, int64_t W, const char* prefix, const Decode& decode) {
  Tensor out = Tensor::empty({n, channels, H, W});
  float* p = out.data<float>();
  std::vector<std::string> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic) if (n > 1)
  for (int64_t k = 0; k < n; ++k) {
    try {
      decode(k, p + k * channels * H * W);
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(k)] = e.what();
    }
  }
  for (const std::string& e : errors) SAGAN_CHECK(e.empty(), "{}{}", prefix, e);
  return out;
}

// The labels' own stream, beside z's (Rng(seed)).
constexpr uint64_t kLabelStream = 0x1ABE15EEDull;

// Images from a generator that lives elsewhere (a checkpoint's, below, or a
// training run's EMA generator): z ~ N(0, I) and labels ~ U{classes}.
// z and the labels come from two streams, so sample i's latent and label
// depend on (seed, i) only, not on the batch size: one stream drawing a
// batch of z, then its labels, gave other samples for --batch-size 7 than 64.
// (normal() takes 4 words each, whatever the batch.)
class ModelSource : public ImageSource {
 public:
  ModelSource(SaganGenerator& g, std::string what, int64_t num_samples, uint64_t seed, Device device)
      : g_(g),
        what_(std::move(what)),
        n_(num_samples),
        seed_(seed),
        zgen_(seed),
        ygen_(seed ^ kLabelStream),
        device_(device) {
    SAGAN_CHECK(num_samples > 0, "generator: --num-samples must be positive, got {}", num_samples);
  }
  std::string describe() const override { return fmt::format("{} (seed {})", what_, seed_); }
  int64_t size() const override { return n_; }
  Tensor next(int64_t n) override {
    n = std::min(n, n_ - done_);
    if (n <= 0) return {};
    const int64_t zd = g_.config().z_dim, K = g_.config().num_classes;
    std::vector<double> z(static_cast<size_t>(n * zd));
    for (double& v : z) v = zgen_.normal();
    std::vector<int64_t> y(static_cast<size_t>(n), 0);
    if (K > 0)
      for (int64_t& v : y) v = static_cast<int64_t>(ygen_.below(static_cast<uint64_t>(K)));
    NoGradGuard ng;
    Tensor img = g_.forward(Tensor::from_vector(z, {n, zd}, DType::F32, device_),
                            K > 0 ? Tensor::from_vector(y, {n}, device_) : Tensor());
    done_ += n;
    return img.to(Device{}).to(DType::F32);
  }

 private:
  SaganGenerator& g_;
  std::string what_;
  int64_t n_;
  uint64_t seed_;
  Rng zgen_, ygen_;
  Device device_;
  int64_t done_ = 0;
};

// A checkpoint's generator (EMA or raw weights), owned by the source.
class CheckpointSource : public ImageSource {
 public:
  explicit CheckpointSource(const GeneratorSpec& spec) {
    generator_section(spec.weights);  // a bad --weights fails before the file is read
    const CheckpointFile c = open_checkpoint(spec.checkpoint);
    Rng init(0);
    g_ = std::make_unique<SaganGenerator>(c.config.model, init);
    load_generator(*g_, c, spec.weights);
    g_->to(spec.device);
    g_->eval();
    src_ = std::make_unique<ModelSource>(
        *g_, fmt::format("generator {} ({} weights, step {})", c.path, spec.weights, c.step), spec.num_samples,
        spec.seed, spec.device);
  }
  std::string describe() const override { return src_->describe(); }
  int64_t size() const override { return src_->size(); }
  Tensor next(int64_t n) override { return src_->next(n); }

 private:
  std::unique_ptr<SaganGenerator> g_;
  std::unique_ptr<ModelSource> src_;
};

class DatasetSource : public ImageSource {
 public:
  DatasetSource(std::shared_ptr<const data::Dataset> ds, int64_t resolution, int64_t channels, int64_t count,
                uint64_t seed, io::Upscale upscale)
      : ds_(std::move(ds)), res_(resolution), channels_(channels), seed_(seed), upscale_(upscale) {
    SAGAN_CHECK(ds_ && ds_->size() > 0, "dataset source: the data set is empty");
    SAGAN_CHECK(channels == 1 || channels == 3, "dataset source: channels must be 1 or 3, got {}", channels);
    SAGAN_CHECK(count >= 0, "dataset source: count must be >= 0, got {}", count);
    H_ = res_ > 0 ? res_ : ds_->height();
    W_ = res_ > 0 ? res_ : ds_->width();
    SAGAN_CHECK(H_ > 0 && W_ > 0, "dataset source: {} has images of varying size; give a resolution", ds_->name());
    order_.resize(static_cast<size_t>(ds_->size()));
    std::iota(order_.begin(), order_.end(), 0);
    Rng gen(seed);
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[gen.below(i)]);
    count_ = count == 0 ? ds_->size() : std::min(count, ds_->size());
    fingerprint_ = data::data_fingerprint(*ds_);
  }
  std::string describe() const override {
    // How smaller images grew, where they are smaller than the resolution
    // (images brought down were not grown: nothing to say).
    const std::string grown =
        ds_->height() >= H_ && ds_->width() >= W_ ? std::string() : fmt::format(" ({} up)", io::upscale_name(upscale_));
    // The fingerprint tells data sets of one name apart (MNIST in place of
    // Fashion-MNIST, another CIFAR-style directory, files replaced): cache
    // keys and the FD reference's reuse check hash this description.
    return fmt::format("{} [{}] ({} of {} images, {}x{}x{}{}, subset seed {})", ds_->name(), fingerprint_, count_,
                       ds_->size(), channels_, H_, W_, grown, seed_);
  }
  int64_t size() const override { return count_; }
  Tensor next(int64_t n) override {
    n = std::min(n, count_ - done_);
    if (n <= 0) return {};
    Tensor out = decode_batch(n, channels_, H_, W_, "", [&](int64_t k, float* dst) {
      const int64_t idx = order_[static_cast<size_t>(done_ + k)];
      to_chw(ds_->get(idx).image, channels_, res_, upscale_, fmt::format("{}: image {}", ds_->name(), idx), H_, W_,
             dst);
    });
    done_ += n;
    return out;
  }

 private:
  std::shared_ptr<const data::Dataset> ds_;
  std::string fingerprint_;
  int64_t res_, channels_, H_ = 0, W_ = 0, count_ = 0, done_ = 0;
  uint64_t seed_;
  io::Upscale upscale_;
  std::vector<int64_t> order_;
};

// The folder order's own stream: the same seed also draws z and data subsets.
constexpr uint64_t kFolderOrderStream = 0xF01DE55EEDull;

// Every image file under dir, sorted; errors name the folder.
std::vector<std::string> image_files(const std::string& dir) {
  std::error_code ec;
  SAGAN_CHECK(fs::is_directory(dir, ec), "folder: {} is not a directory", dir);
  std::vector<std::string> files = data::image_files_under(dir);
  SAGAN_CHECK(!files.empty(), "folder: {} holds no .png/.jpg/.jpeg files", dir);
  return files;
}

class FolderSource : public ImageSource {
 public:
  FolderSource(std::string dir, int64_t channels, int64_t resolution, int64_t count, io::Upscale upscale, uint64_t seed)
      : dir_(std::move(dir)), channels_(channels), res_(resolution), upscale_(upscale), seed_(seed) {
    SAGAN_CHECK(channels == 1 || channels == 3, "folder: {}: channels must be 1 or 3, got {}", dir_, channels);
    files_ = image_files(dir_);
    // A seeded random order of the sorted paths: a folder laid out by class
    // would otherwise give a subset of the first classes (FID 640 instead of
    // 6.5 on Fashion-MNIST) and Inception Score splits of one class each.
    Rng order(seed_ ^ kFolderOrderStream);
    for (size_t i = files_.size(); i > 1; --i) std::swap(files_[i - 1], files_[order.below(i)]);
    if (count > 0 && count < static_cast<int64_t>(files_.size())) files_.resize(static_cast<size_t>(count));
    if (res_ > 0) {
      H_ = W_ = res_;
    } else {
      io::Image first = io::read_image(files_[0]);
      H_ = first.height;
      W_ = first.width;
    }
  }
  std::string describe() const override {
    // Whether an image is grown is known only as it is read: the rule, not a claim.
    return fmt::format("folder {} ({} images in seed-{} order, {}x{}x{}{})", dir_, files_.size(), seed_, channels_, H_,
                       W_,
                       res_ > 0 ? fmt::format(", smaller images {} up", io::upscale_name(upscale_)) : std::string());
  }
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Tensor next(int64_t n) override {
    n = std::min(n, size() - done_);
    if (n <= 0) return {};
    Tensor out = decode_batch(n, channels_, H_, W_, "folder: ", [&](int64_t k, float* dst) {
      const std::string& path = files_[static_cast<size_t>(done_ + k)];
      to_chw(io::read_image(path), channels_, res_, upscale_, path, H_, W_, dst);
    });
    done_ += n;
    return out;
  }

 private:
  std::string dir_;
  int64_t channels_, res_, H_ = 0, W_ = 0, done_ = 0;
  io::Upscale upscale_;
  uint64_t seed_;
  std::vector<std::string> files_;
};

}  // namespace

TrainConfig checkpoint_config(const std::string& checkpoint_or_run) {
  return open_checkpoint(checkpoint_or_run).config;
}

std::unique_ptr<ImageSource> generator_source(const GeneratorSpec& spec) {
  return std::make_unique<CheckpointSource>(spec);
}

std::unique_ptr<ImageSource> generator_source(SaganGenerator& g, const std::string& what, int64_t num_samples,
                                              uint64_t seed, Device device) {
  return std::make_unique<ModelSource>(g, what, num_samples, seed, device);
}

std::unique_ptr<ImageSource> dataset_source(std::shared_ptr<const data::Dataset> ds, int64_t resolution,
                                            int64_t channels, int64_t count, uint64_t seed, io::Upscale upscale) {
  return std::make_unique<DatasetSource>(std::move(ds), resolution, channels, count, seed, upscale);
}

std::shared_ptr<data::Dataset> open_dataset(const std::string& name, const std::string& path, const std::string& split,
                                            int64_t folder_channels) {
  SAGAN_CHECK(split == "train" || split == "test", "--split: '{}' is not train or test", split);
  if (name == "fashion-mnist") return data::fashion_mnist(split, path.empty() ? data::kFashionMnistDir : path);
  if (name == "cifar10") {
    SAGAN_CHECK(!path.empty(), "--dataset cifar10 needs --data DIR (the CIFAR-10 binary version)");
    return data::cifar10(path, split);
  }
  if (name == "folder") {
    SAGAN_CHECK(split == "train", "--split: an image folder has no '{}' split", split);
    SAGAN_CHECK(!path.empty(), "--dataset folder needs --data DIR");
    return data::image_folder(path, folder_channels);
  }
  SAGAN_FAIL("--dataset: '{}' is not one of fashion-mnist, cifar10, folder", name);
}

std::unique_ptr<ImageSource> folder_source(const std::string& dir, int64_t channels, int64_t resolution, int64_t count,
                                           io::Upscale upscale, uint64_t seed) {
  return std::make_unique<FolderSource>(dir, channels, resolution, count, upscale, seed);
}

FolderImages probe_folder(const std::string& dir) {
  const std::vector<std::string> files = image_files(dir);
  const io::Image first = io::read_image(files[0]);
  return {first.height, first.width, data::auto_channels(files)};
}

std::string resolve_features(const std::string& features, const std::string& dataset, int64_t channels) {
  if (features != "auto") return features;
  return dataset == "fashion-mnist" || channels == 1 ? "fmnist" : "inception";
}

LoadedFeatureNet load_feature_net(const std::string& features, const std::string& weights, Device device,
                                  const std::string& option) {
  LoadedFeatureNet out;
  // A file the caller named is checked here, naming the caller's option: the
  // feature nets' own messages cannot know which tool's option gave it.
  SAGAN_CHECK(weights.empty() || fs::exists(weights), "{} {}: no such file", option, weights);
  if (features == "inception") {
    SAGAN_CHECK(!weights.empty(),
                "inception features need {} FILE: convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with "
                "tools/convert_fid_inception.py (docs/evaluation.md); Fashion-MNIST can use the fmnist features",
                option);
    out.net = FidInception::load(weights, DType::F32, device);
    out.file = weights;
  } else {
    SAGAN_CHECK(features == "fmnist", "features: '{}' is not one of auto, fmnist, inception", features);
    out.file = weights.empty() ? default_fmnist_weights() : weights;
    out.net = std::make_unique<FmnistFeatureNet>(out.file, device);
  }
  return out;
}

Embedding embed(ImageSource& src, FeatureNet& net, int64_t batch_size, const Progress& progress) {
  SAGAN_CHECK(batch_size > 0, "embed: batch size must be positive, got {}", batch_size);
  Embedding e;
  const int64_t total = src.size();
  while (true) {
    Tensor imgs = src.next(batch_size);
    if (!imgs.defined()) break;
    FeatureNet::Output o = net.embed(imgs);
    e.features.append(o.features);
    e.logits.append(o.logits);
    if (progress) progress(e.features.rows, total);
  }
  SAGAN_CHECK(e.features.rows > 0, "embed: {} produced no images", src.describe());
  return e;
}

StatsFile make_stats(const Embedding& e, const std::string& feature_net,
                     const std::map<std::string, std::string>& metadata) {
  StatsFile f;
  SAGAN_CHECK(e.features.rows >= 2, "statistics: {} image(s) embedded; the covariance needs at least 2",
              e.features.rows);
  f.stats = gaussian_stats(e.features);  // in blocks: no float64 copy of the whole matrix
  f.feature_net = feature_net;
  f.features = e.features;
  if (e.logits.rows > 0) f.logits = e.logits;
  f.metadata = metadata;
  return f;
}

std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SAGAN_CHECK(in.good(), "{}: cannot read", path);
  uint64_t h = kFnv1aOffset;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = fnv1a64(buf.data(), static_cast<size_t>(in.gcount()), h);
  }
  return fmt::format("{:016x}", h);
}

std::string cache_key(const std::string& readable, const std::string& full_description) {
  std::string safe;
  for (char c : readable) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return fmt::format("{}-{:016x}", safe, fnv1a64(full_description.data(), full_description.size()));
}

StatsFile cached_stats(const std::string& cache_dir, const std::string& key, const std::string& feature_net,
                       const std::function<StatsFile()>& make, bool* hit,
                       const std::function<void(const std::string&)>& warn) {
  fs::path path = fs::path(cache_dir) / (key + ".safetensors");
  std::optional<StatsFile> cached;
  if (fs::exists(path)) {
    try {
      cached = load_stats(path.string());
    } catch (const Error& e) {
      if (warn) warn(fmt::format("--cache: unreadable, made again: {}", e.what()));
    }
  }
  if (cached) {
    SAGAN_CHECK(cached->feature_net == feature_net,
                "--cache: {} holds '{}' features, not '{}'; delete it or use another --cache directory", path.string(),
                cached->feature_net, feature_net);
    if (hit) *hit = true;
    return std::move(*cached);
  }
  StatsFile f = make();
  fs::create_directories(cache_dir);
  save_stats(path.string(), f);
  if (hit) *hit = false;
  return f;
}

Report compare(const StatsFile& ev, const StatsFile& ref, const MetricOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  SAGAN_CHECK(ev.feature_net == ref.feature_net,
              "compare: the evaluated set has '{}' features but the reference has '{}'; use the same --features",
              ev.feature_net, ref.feature_net);
  Report r;
  r.feature_net = ev.feature_net;
  r.n_evaluated = ev.stats.n;
  r.n_reference = ref.stats.n;
  auto note = [&](std::string s) {
    if (!s.empty()) r.notes.push_back(std::move(s));
  };
  if (opt.fid) {
    note(covariance_warning("FID (evaluated set)", ev.stats.n, ev.stats.dim));
    note(covariance_warning("FID (reference set)", ref.stats.n, ref.stats.dim));
    r.fid = frechet_distance(ev.stats, ref.stats, /*warn=*/false);
    if (r.fid->not_psd())
      note(fmt::format("FID: clamped {} negative eigenvalue(s) down to {:.3e} (largest {:.3e})",
                       r.fid->clamped_eigenvalues, r.fid->most_negative_eigenvalue, r.fid->largest_eigenvalue));
  }
  const bool features = ev.features && ref.features;
  if (opt.kid) {
    if (!features) {
      note("KID: skipped, a statistics file without features (mu/sigma only) cannot give it");
    } else {
      const int64_t m = std::min({opt.kid_subset_size, ev.features->rows, ref.features->rows});
      if (m < opt.kid_subset_size)
        note(fmt::format("KID: subsets of {} requested, the sets have {} and {} samples; used {}", opt.kid_subset_size,
                         ev.features->rows, ref.features->rows, m));
      r.kid = kernel_inception_distance(*ev.features, *ref.features, opt.kid_subsets, opt.kid_subset_size, opt.seed,
                                        /*warn=*/false);
    }
  }
  if (opt.pr) {
    if (!features)
      note("precision/recall: skipped, a statistics file without features cannot give it");
    else if (ev.features->rows <= opt.pr_k || ref.features->rows <= opt.pr_k)
      note(fmt::format("precision/recall: skipped, k = {} needs more than {} samples in each set (evaluated {}, "
                       "reference {})",
                       opt.pr_k, opt.pr_k, ev.features->rows, ref.features->rows));
    else
      r.pr = precision_recall(*ref.features, *ev.features, opt.pr_k);
  }
  if (opt.is) {
    // Each split needs a sample: fewer samples than --is-splits give no IS.
    auto is_of = [&](const char* set, const auto& logits, std::optional<IsResult>& out) {
      if (!logits)
        note(fmt::format("IS ({} set): skipped, no logits (a statistics file without them)", set));
      else if (logits->rows < opt.is_splits)
        note(fmt::format("IS ({} set): skipped, {} samples for --is-splits {}: give fewer splits or more samples", set,
                         logits->rows, opt.is_splits));
      else
        out = inception_score(*logits, opt.is_splits);
    };
    is_of("evaluated", ev.logits, r.is);
    is_of("reference", ref.logits, r.is_reference);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string Report::table() const {
  std::string s;
  auto row = [&](const std::string& k, const std::string& v) { s += fmt::format("  {:<22} {}\n", k, v); };
  row("features", feature_net);
  row("evaluated", fmt::format("{} ({} samples)", evaluated, n_evaluated));
  row("reference", fmt::format("{} ({} samples)", reference, n_reference));
  if (fid) {
    // Round-off can leave a distance of identical sets at -1e-12: show it as 0.
    auto num = [](double v) { return fmt::format("{:.4f}", std::abs(v) < 5e-5 ? 0.0 : v); };
    row("FID", num(fid->value));
    row("  mean term", num(fid->mean_term));
    row("  covariance term", num(fid->trace_term));
  }
  if (kid)
    row("KID",
        kid->whole_sets
            ? fmt::format("{:.6f}  (one subset of {}: the whole sets, so no spread)", kid->mean, kid->subset_size)
            : fmt::format("{:.6f} +- {:.6f}  ({} subsets of {})", kid->mean, kid->std, kid->subsets, kid->subset_size));
  if (is) row("IS", fmt::format("{:.4f} +- {:.4f}  ({} splits)", is->mean, is->std, is->splits));
  if (is_reference) row("IS (reference)", fmt::format("{:.4f} +- {:.4f}", is_reference->mean, is_reference->std));
  if (pr) {
    row("precision", fmt::format("{:.4f}  (k = {})", pr->precision, pr->k));
    row("recall", fmt::format("{:.4f}", pr->recall));
  }
  for (const std::string& n : notes) s += "  note: " + n + "\n";
  return s;
}

std::string Report::json() const {
  nlohmann::ordered_json j;
  j["features"] = feature_net;
  j["evaluated"] = {{"description", evaluated}, {"samples", n_evaluated}};
  j["reference"] = {{"description", reference}, {"samples", n_reference}};
  if (fid)
    j["fid"] = {{"value", fid->value},
                {"mean_term", fid->mean_term},
                {"trace_term", fid->trace_term},
                {"clamped_eigenvalues", fid->clamped_eigenvalues},
                {"most_negative_eigenvalue", fid->most_negative_eigenvalue}};
  if (kid)
    j["kid"] = {{"mean", kid->mean}, {"std", kid->std}, {"subsets", kid->subsets}, {"subset_size", kid->subset_size}};
  if (is) j["is"] = {{"mean", is->mean}, {"std", is->std}, {"splits", is->splits}};
  if (is_reference) j["is_reference"] = {{"mean", is_reference->mean}, {"std", is_reference->std}};
  if (pr) j["precision_recall"] = {{"precision", pr->precision}, {"recall", pr->recall}, {"k", pr->k}};
  j["notes"] = notes;
  j["metric_seconds"] = seconds;
  return j.dump(2) + "\n";
}

}  // namespace sagan::quality
