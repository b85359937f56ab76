// Evaluation pipeline: image sources (a checkpoint's generator, a data set, a
// folder of images), embedding them with a FeatureNet, statistics caching,
// and the metrics report (FID, KID, IS, precision/recall) as a table or JSON.
// tools/sagan-eval is a command line over this.
//
// Real and generated images take the same path: a data set's images are
// center-cropped and resized to the generator's resolution exactly as
// sagan-train's loader does (io::fit_square, with the run's --resize for
// smaller images), then the feature net resizes both sides alike.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sagan/models/data/dataset.h"
#include "sagan/models/generator.h"
#include "sagan/models/quality/feature_net.h"
#include "sagan/models/quality/metrics.h"
#include "sagan/models/train_config.h"

namespace sagan::quality {

// Produces images (B, C, H, W) float32 in [-1, 1] on the CPU.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual std::string describe() const = 0;  // for reports and cache metadata
  virtual int64_t size() const = 0;          // images it will produce in all
  // The next at most n images; an undefined tensor when exhausted.
  virtual Tensor next(int64_t n) = 0;
};

// ---- a checkpoint's generator ----
struct GeneratorSpec {
  std::string checkpoint;       // .safetensors file or run directory (newest checkpoint)
  std::string weights = "ema";  // ema | g
  int64_t num_samples = 10000;
  uint64_t seed = 0;  // z ~ N(0, I) and labels ~ U{classes} from it
  Device device;
};
// The checkpoint's config (data set, resolution, channels, classes).
TrainConfig checkpoint_config(const std::string& checkpoint_or_run);
std::unique_ptr<ImageSource> generator_source(const GeneratorSpec& spec);
// A live generator (e.g. a training run's EMA G, in eval mode), which must
// outlive the source; `what` names it in descriptions.
std::unique_ptr<ImageSource> generator_source(SaganGenerator& g, const std::string& what, int64_t num_samples,
                                              uint64_t seed, Device device);

// ---- a data set ----
// First `count` images (0: all) of a seeded permutation, converted to
// `channels` and, when resolution > 0 and the size differs, center-cropped
// and resized like the training loader (smaller images grown by `upscale`).
std::unique_ptr<ImageSource> dataset_source(std::shared_ptr<const data::Dataset> ds, int64_t resolution,
                                            int64_t channels, int64_t count, uint64_t seed,
                                            io::Upscale upscale = io::Upscale::bilinear);
// The data set sagan-train would use (fashion-mnist | cifar10 | folder, the
// folder read with `folder_channels`, 0 = auto), or its test split
// (fashion-mnist and cifar10).
std::shared_ptr<data::Dataset> open_dataset(const std::string& name, const std::string& path, const std::string& split,
                                            int64_t folder_channels = 3);

// ---- a folder of images ----
// Every .png/.jpg/.jpeg under dir (recursively; no class sub-folders needed,
// so sagan-sample --separate output works), in a random order fixed by
// `seed` (of the sorted paths), and the first `count` of that order (0: all):
// a class-sorted folder gives an even subset and Inception Score splits of
// every class. With resolution 0 every image must have the first one's size.
std::unique_ptr<ImageSource> folder_source(const std::string& dir, int64_t channels, int64_t resolution, int64_t count,
                                           io::Upscale upscale = io::Upscale::bilinear, uint64_t seed = 0);

// What the images of such a folder are, before any is embedded: the size of
// the first (sorted) file, which all must share unless a resolution is
// given, and their channels: 1 when every file's header says grayscale, else
// 3 (what --channels auto does for training folders). Without a checkpoint
// the evaluated folder sets the comparison's geometry, as a generator would.
struct FolderImages {
  int64_t height = 0, width = 0, channels = 3;
};
FolderImages probe_folder(const std::string& dir);

// ---- the feature network by name ----
// "auto" means "fmnist" for Fashion-MNIST and 1-channel data, else "inception".
std::string resolve_features(const std::string& features, const std::string& dataset, int64_t channels);
struct LoadedFeatureNet {
  std::unique_ptr<FeatureNet> net;
  std::string file;  // the weights file it was loaded from
};
// "fmnist" (weights: a file, or "" for the committed one) or "inception"
// (weights required). `option` names the setting in errors (e.g.
// "--inception-weights", "fd_weights").
LoadedFeatureNet load_feature_net(const std::string& features, const std::string& weights, Device device,
                                  const std::string& option);

// ---- embedding ----
struct Embedding {
  FeatureMatrix features, logits;
};
// progress(done, total) after each batch.
using Progress = std::function<void(int64_t done, int64_t total)>;
Embedding embed(ImageSource& src, FeatureNet& net, int64_t batch_size, const Progress& progress = {});

// Statistics (with features and logits, so KID / IS / precision-recall work
// from the cache) of an embedding.
StatsFile make_stats(const Embedding& e, const std::string& feature_net,
                     const std::map<std::string, std::string>& metadata);

// Loads <cache_dir>/<key>.safetensors when it exists and was made by the same
// feature net; otherwise calls make() and writes the file atomically.
// *hit tells which happened. An entry that cannot be read (cut short,
// damaged) is made again and replaced: warn() gets the file and why (a
// cache holds nothing that cannot be recomputed).
StatsFile cached_stats(const std::string& cache_dir, const std::string& key, const std::string& feature_net,
                       const std::function<StatsFile()>& make, bool* hit = nullptr,
                       const std::function<void(const std::string&)>& warn = {});
// FNV-1a 64 of a file's bytes, as 16 hex digits: identifies feature-net
// weights in cache keys, so retrained weights at the same path never hit a
// stale entry. Throws naming the file when it cannot be read.
std::string file_fingerprint(const std::string& path);
// A file-name-safe key from a description (readable prefix + hash).
std::string cache_key(const std::string& readable, const std::string& full_description);

// ---- metrics ----
struct MetricOptions {
  bool fid = true, kid = true, is = true, pr = true;
  int64_t kid_subsets = 100, kid_subset_size = 1000;
  int64_t is_splits = 10;
  int64_t pr_k = 3;
  uint64_t seed = 0;
};

struct Report {
  std::string feature_net;
  std::string evaluated, reference;  // descriptions
  int64_t n_evaluated = 0, n_reference = 0;
  std::optional<FrechetResult> fid;
  std::optional<KidResult> kid;
  std::optional<IsResult> is, is_reference;
  std::optional<PrResult> pr;
  std::vector<std::string> notes;  // why a metric is missing, sample-size warnings
  double seconds = 0;

  std::string table() const;
  std::string json() const;
};

// `evaluated` against `reference`; metrics whose inputs are missing (no
// features in a statistics-only reference, no logits) are left out with a note.
Report compare(const StatsFile& evaluated, const StatsFile& reference, const MetricOptions& opt);

}  // namespace sagan::quality
