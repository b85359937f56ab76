#include "sagan/models/quality/fd_monitor.h"

#include <filesystem>
#include <optional>

#include "sagan/core/warning.h"

namespace sagan::quality {

namespace fs = std::filesystem;

namespace {
constexpr int64_t kBatch = 100;
// Fixed, and apart from the training seeds (data order, sample grids).
constexpr uint64_t kGeneratorSeedOffset = 0x5D5D;
}  // namespace

FdMonitor::FdMonitor(const TrainConfig& cfg, std::shared_ptr<const data::Dataset> dataset, const std::string& run_dir,
                     Device device, bool progress, const std::string& name)
    : cfg_(cfg), device_(device) {
  const std::string features = resolve_features(cfg.fd_features, cfg.dataset, cfg.model.image_channels);
  net_ = load_feature_net(features, cfg.fd_weights, device, "--fd-weights");
  net_id_ = net_.net->name();
  const std::string small = covariance_warning("--fd-samples", cfg.fd_samples, net_.net->feature_dim());
  if (progress) warn(small);

  // Reference statistics: a seeded subset of the training set, through the
  // training loader's geometry, embedded once per run.
  const std::string path = (fs::path(run_dir) / "fd_reference.safetensors").string();
  auto source = dataset_source(std::move(dataset), cfg.model.resolution, cfg.model.image_channels, cfg.fd_samples,
                               cfg.seed, io::parse_upscale(cfg.resize, "resize"));
  const std::string description = source->describe(), weights = file_fingerprint(net_.file);
  std::optional<StatsFile> saved;
  if (fs::exists(path)) {
    // A file cut short (a crash in its first write on a file system without
    // atomic renames, a disk error) is made again, as --cache does: it holds
    // nothing a resume needs.
    try {
      saved = load_stats(path);
    } catch (const Error& e) {
      warn(fmt::format("FD reference unreadable, made again: {}", e.what()));
    }
  }
  if (saved) {
    // Reused only when made from the same images by the same weights.
    StatsFile& f = *saved;
    auto meta = [&](const char* key) { return f.metadata.count(key) ? f.metadata.at(key) : std::string(); };
    if (f.feature_net == net_id_ && f.stats.n == source->size() && meta("source") == description &&
        meta("feature_weights") == weights) {
      reference_ = f.stats;
      return;
    }
  }
  if (progress) fmt::print("{}: embedding {} real images for the FD ({} features)\n", name, source->size(), net_id_);
  StatsFile f = make_stats(embed(*source, *net_.net, kBatch), net_id_,
                           {{"source", description}, {"feature_file", net_.file}, {"feature_weights", weights}});
  f.features.reset();  // the FD needs mean and covariance only
  f.logits.reset();
  save_stats(path, f);
  reference_ = f.stats;
}

double FdMonitor::measure(SaganGenerator& g) {
  g.eval();
  auto source = generator_source(g, "EMA generator", cfg_.fd_samples, cfg_.seed + kGeneratorSeedOffset, device_);
  Embedding e = embed(*source, *net_.net, kBatch);
  FeatureStats stats(e.features.cols);
  stats.add(e.features);
  return frechet_distance(stats.stats(), reference_, /*warn=*/false).value;
}

}  // namespace sagan::quality
