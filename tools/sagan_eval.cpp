// sagan-eval: FID, KID, Inception Score and precision/recall.
//
//   sagan-eval RUN_DIR|CHECKPOINT                  generator (EMA) vs its training data set
//   sagan-eval CKPT --dataset cifar10 --data DIR   ... vs another data set
//   sagan-eval --folder A --ref-folder B           two image folders
//   sagan-eval CKPT|--folder A --ref-stats FILE    against saved statistics
//   ... --save-stats FILE                          keep the evaluated set's statistics
//
// Features: --features fmnist (the engine's Fashion-MNIST classifier, the
// default for Fashion-MNIST runs and 1-channel data) or inception (pytorch-fid's
// Inception-v3, needs --inception-weights; see docs/evaluation.md).
#include <CLI/CLI.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "sagan/core/io/atomic_file.h"
#include "sagan/models/quality/evaluate.h"
#include "sagan/models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;
using namespace sagan::quality;
namespace fs = std::filesystem;

namespace {

struct EvalOptions {
  // the evaluated set: a checkpoint / run directory, or a folder
  std::string checkpoint, folder, weights = "ema";
  int64_t num_samples = 10000;
  uint64_t seed = 0;
  // the reference: a data set, a folder or saved statistics
  std::string dataset, data_path, split, ref_folder, ref_stats, cache_dir;  // split "": train
  std::optional<int64_t> num_real;  // unset: --num-samples (a -1 sentinel let "--num-real -1" through)
  // features
  std::string features = "auto", inception_weights, fmnist_weights;
  int64_t resolution = 0, channels = 0;
  std::string resize;  // "": the checkpoint's, else bilinear
  // metrics and output
  std::string metrics = "fid,kid,is,pr", json_path, save_stats_path, device = "auto";
  int64_t kid_subsets = 100, kid_subset_size = 1000, is_splits = 10, pr_k = 3, batch = 100;
  bool quiet = false;

  void check() const {
    SAGAN_CHECK(checkpoint.empty() != folder.empty(),
                "give exactly one set to evaluate: a checkpoint / run directory, or --folder DIR (got {})",
                checkpoint.empty() ? "neither" : "both");
    SAGAN_CHECK(ref_folder.empty() || ref_stats.empty(), "--ref-folder and --ref-stats are alternatives; give one");
    // Options that would be ignored are refused instead.
    SAGAN_CHECK(folder.empty() || weights == "ema", "--weights {}: applies to a checkpoint, not to --folder", weights);
    const bool other_ref = !ref_folder.empty() || !ref_stats.empty();
    const char* other = !ref_folder.empty() ? "--ref-folder" : "--ref-stats";
    SAGAN_CHECK(!other_ref || cache_dir.empty(), "--cache caches data-set statistics; not with {}", other);
    SAGAN_CHECK(!other_ref || (dataset.empty() && data_path.empty()),
                "--dataset / --data name a reference data set; not with {}", other);
    SAGAN_CHECK(!other_ref || split.empty(), "--split picks the reference data set's images; not with {}", other);
    SAGAN_CHECK(ref_stats.empty() || !num_real,
                "--num-real picks how many real images to embed; --ref-stats {} holds statistics already made",
                ref_stats);
    SAGAN_CHECK(ref_stats.empty() || checkpoint.empty() || resize.empty(),
                "--resize grows the reference's real images; --ref-stats {} holds statistics already made (the "
                "generator's images are compared with how its run grew its data)",
                ref_stats);
    SAGAN_CHECK(checkpoint.empty() || channels == 0,
                "--channels applies to --folder; the generator in {} draws its own channels", checkpoint);
    SAGAN_CHECK(resolution == 0 || resolution >= 8, "--resolution must be at least 8 (or 0: keep), got {}",
                resolution);
    // Every metric is a statistic over a set: covariances, kernel means and
    // neighbours need two images at least.
    SAGAN_CHECK(num_samples >= 2, "--num-samples must be at least 2 (the metrics compare sets of images), got {}",
                num_samples);
    SAGAN_CHECK(batch > 0, "--batch-size must be positive, got {}", batch);
    SAGAN_CHECK(channels == 0 || channels == 1 || channels == 3, "--channels must be 1 or 3, got {}", channels);
    SAGAN_CHECK(!num_real || *num_real == 0 || *num_real >= 2,
                "--num-real must be 0 (the whole data set) or at least 2, got {}", *num_real);
    SAGAN_CHECK(kid_subsets > 0, "--kid-subsets must be positive, got {}", kid_subsets);
    SAGAN_CHECK(kid_subset_size > 1, "--kid-subset-size must be at least 2, got {}", kid_subset_size);
    SAGAN_CHECK(is_splits > 0, "--is-splits must be positive, got {}", is_splits);
    SAGAN_CHECK(pr_k > 0, "--pr-k must be positive, got {}", pr_k);
    // Missing inputs and unwritable outputs are found now, not after the embedding.
    for (const auto& [option, dir] : {std::pair{"--folder", folder}, std::pair{"--ref-folder", ref_folder}})
      SAGAN_CHECK(dir.empty() || std::filesystem::is_directory(dir), "{} {}: no such directory", option, dir);
    SAGAN_CHECK(ref_stats.empty() || std::filesystem::is_regular_file(ref_stats), "--ref-stats {}: no such file",
                ref_stats);
    for (const auto& [option, file] :
         {std::pair{"--inception-weights", inception_weights}, std::pair{"--fmnist-weights", fmnist_weights}})
      SAGAN_CHECK(file.empty() || std::filesystem::is_regular_file(file), "{} {} does not exist or is not a file",
                  option, file);
    if (!json_path.empty()) io::check_writable_file(json_path, "--json " + json_path);
    if (!save_stats_path.empty()) io::check_writable_file(save_stats_path, "--save-stats " + save_stats_path);
    // The feature weights are checked in plan(), once the file actually
    // loaded is known (given, $SAGAN_FMNIST_WEIGHTS or the committed one).
    const std::vector<std::pair<std::string, std::string>> inputs = {{"the checkpoint", checkpoint},
                                                                     {"--ref-stats", ref_stats}};
    cli::check_output_not_input(json_path, "--json " + json_path, inputs);
    cli::check_output_not_input(save_stats_path, "--save-stats " + save_stats_path, inputs);
    if (!json_path.empty() && !save_stats_path.empty()) {  // files still to be made: compared by path
      // Absolute first: weakly_canonical leaves a relative name of a missing
      // file relative ("same" and "./same" would differ).
      std::error_code ec_json, ec_stats, ec;
      const fs::path json = fs::weakly_canonical(fs::absolute(json_path), ec_json),
                     stats = fs::weakly_canonical(fs::absolute(save_stats_path), ec_stats);
      const bool same = (!ec_json && !ec_stats && json == stats) || fs::equivalent(json_path, save_stats_path, ec);
      SAGAN_CHECK(!same, "--json {} and --save-stats {}: the same file; the report would replace the statistics",
                  json_path, save_stats_path);
    }
    if (!cache_dir.empty()) io::check_writable_dir(cache_dir, "--cache " + cache_dir);
  }
  int64_t real_count() const { return num_real.value_or(num_samples); }
  std::string split_or_train() const { return split.empty() ? "train" : split; }
};

void add_options(CLI::App& app, EvalOptions& o) {
  app.get_formatter()->column_width(38);
  app.add_option("checkpoint", o.checkpoint,
                 "sagan-train checkpoint (.safetensors) or run directory (newest checkpoint)");
  auto* src = app.add_option_group("Images");
  src->add_option("--folder", o.folder, "Evaluate this folder of .png/.jpg images (recursive) instead of a generator");
  src->add_option("--weights", o.weights, "Generator weights: ema (default) or g")->check(CLI::IsMember({"ema", "g"}));
  src->add_option("-n,--num-samples", o.num_samples,
                  "Generated images (or at most this many from --folder); 50000 is the convention")
      ->capture_default_str();
  src->add_option("--seed", o.seed, "Seed of z, labels, the real subset and KID subsets")->capture_default_str();
  auto* ref = app.add_option_group("Reference");
  ref->add_option("--dataset", o.dataset, "fashion-mnist | cifar10 | folder (default: the checkpoint's)");
  ref->add_option("--data", o.data_path, "Data location, as for sagan-train (default: the checkpoint's)");
  ref->add_option("--split", o.split, "train (the default, the convention) or test")
      ->check(CLI::IsMember({"train", "test"}));
  ref->add_option("--num-real", o.num_real, "Real images used (default: --num-samples; 0 = the whole data set)");
  ref->add_option("--ref-folder", o.ref_folder, "Compare against this folder of images");
  ref->add_option("--ref-stats", o.ref_stats, "Compare against a statistics file (from --save-stats or --cache)");
  ref->add_option("--cache", o.cache_dir, "Directory caching data-set statistics (embedded once per setting)");
  auto* feat = app.add_option_group("Features");
  feat->add_option("--features", o.features,
                   "auto | fmnist | inception (auto: fmnist for Fashion-MNIST and 1-channel data)")
      ->check(CLI::IsMember({"auto", "fmnist", "inception"}))
      ->capture_default_str();
  feat->add_option("--inception-weights", o.inception_weights,
                   "pytorch-fid Inception weights converted by tools/convert_fid_inception.py");
  feat->add_option("--fmnist-weights", o.fmnist_weights,
                   "Fashion-MNIST classifier weights (default: $SAGAN_FMNIST_WEIGHTS, else the committed file)");
  feat->add_option("--resolution", o.resolution,
                   "Resize folder images to this square size (default: keep; all must match, and the reference is "
                   "brought to their size). With a checkpoint: the generator's size, the only one allowed");
  feat->add_option("--channels", o.channels,
                   "1 or 3 channels for folders (default: the generator's; for --folder 1 when all its images are "
                   "gray, else 3)");
  feat->add_option("--resize", o.resize,
                   "bilinear | nearest | pad: how real images smaller than the resolution reach it (default: the "
                   "checkpoint's --resize, else bilinear)")
      ->check(CLI::IsMember({"bilinear", "nearest", "pad"}));
  auto* met = app.add_option_group("Metrics");
  met->add_option("--metrics", o.metrics, "Comma-separated subset of fid,kid,is,pr")->capture_default_str();
  met->add_option("--kid-subsets", o.kid_subsets, "KID subsets")->capture_default_str();
  met->add_option("--kid-subset-size", o.kid_subset_size, "KID subset size")->capture_default_str();
  met->add_option("--is-splits", o.is_splits, "Inception Score splits")->capture_default_str();
  met->add_option("--pr-k", o.pr_k, "k of the k-NN manifolds for precision/recall")->capture_default_str();
  auto* out = app.add_option_group("Output");
  out->add_option("--json", o.json_path, "Also write the results as JSON to this file");
  out->add_option("--save-stats", o.save_stats_path, "Save the evaluated set's statistics (and features) here");
  out->add_option("--batch-size", o.batch, "Images per forward pass")->capture_default_str();
  out->add_option("--device", o.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  out->add_flag("--quiet", o.quiet, "No progress display");
}

MetricOptions metric_options(const EvalOptions& o) {
  MetricOptions mo;
  mo.fid = mo.kid = mo.is = mo.pr = false;
  SAGAN_CHECK(!o.metrics.empty(), "--metrics: empty; give some of fid,kid,is,pr");
  SAGAN_CHECK(o.metrics.back() != ',', "--metrics: '{}' ends in a comma; give some of fid,kid,is,pr", o.metrics);
  std::stringstream ss(o.metrics);
  for (std::string m; std::getline(ss, m, ',');) {
    if (m == "fid")
      mo.fid = true;
    else if (m == "kid")
      mo.kid = true;
    else if (m == "is")
      mo.is = true;
    else if (m == "pr")
      mo.pr = true;
    else
      SAGAN_FAIL("--metrics: '{}' is not one of fid, kid, is, pr", m);
  }
  mo.kid_subsets = o.kid_subsets;
  mo.kid_subset_size = o.kid_subset_size;
  mo.is_splits = o.is_splits;
  mo.pr_k = o.pr_k;
  mo.seed = o.seed;
  return mo;
}

// What the options resolve to once the checkpoint's config is known.
struct EvalPlan {
  std::optional<TrainConfig> cfg;  // the checkpoint's, when evaluating one
  std::string dataset, data_path;  // the reference data set, when comparing with one
  int64_t channels = 3, resolution = 0;         // resolution 0: a folder of non-square images, kept as they are
  std::string image_size;                       // every image's: "32" (32x32) or "6x5" (non-square folder)
  io::Upscale upscale = io::Upscale::bilinear;  // as the run's loader grew smaller images
  std::string evaluated_upscale;                // how the evaluated set's images were grown: the method or "none"
  Device device;
  std::shared_ptr<data::Dataset> ref_dataset;  // the reference data set, opened before any embedding
  std::string features;                        // fmnist | inception
  LoadedFeatureNet net;
  std::string net_id;
  std::string net_fingerprint;  // of the weights file's bytes (read once: Inception's is 95 MB)
};

// Without a checkpoint the evaluated folder sets the geometry as a generator
// would: the reference is brought to its images' size (or --resolution) and
// takes their channels. Before, the reference kept its stored size (28x28
// against 32x32 samples) and folders were read in 3 channels.
void plan_folder_geometry(const EvalOptions& o, EvalPlan& p) {
  const FolderImages f = probe_folder(o.folder);
  p.channels = o.channels > 0 ? o.channels : f.channels;
  p.resolution = o.resolution > 0 ? o.resolution : f.height == f.width ? f.height : 0;
  // Non-square images stay as they are: only a reference of that size fits.
  if (p.resolution == 0 && !o.ref_folder.empty()) {
    const FolderImages r = probe_folder(o.ref_folder);
    SAGAN_CHECK(r.height == f.height && r.width == f.width,
                "--ref-folder {} holds {}x{} images but --folder {} {}x{}: pass --resolution N to bring both to NxN",
                o.ref_folder, r.height, r.width, o.folder, f.height, f.width);
  }
  SAGAN_CHECK(p.resolution > 0 || !o.ref_folder.empty() || !o.ref_stats.empty(),
              "--folder {} holds {}x{} images, and the reference data set's images would be cropped to squares: "
              "pass --resolution N to bring both to NxN",
              o.folder, f.height, f.width);
  p.image_size = p.resolution > 0 ? std::to_string(p.resolution) : fmt::format("{}x{}", f.height, f.width);
  const bool grown = o.resolution > 0 && (f.height < o.resolution || f.width < o.resolution);
  p.evaluated_upscale = grown ? io::upscale_name(p.upscale) : "none";
}

EvalPlan plan(const EvalOptions& o) {
  EvalPlan p;
  p.device = resolve_device(o.device);
  if (!o.checkpoint.empty()) p.cfg = checkpoint_config(o.checkpoint);
  p.dataset = o.dataset;
  p.data_path = o.data_path;
  if (o.ref_folder.empty() && o.ref_stats.empty()) {
    SAGAN_CHECK(p.cfg || !p.dataset.empty(),
                "--folder needs a reference: --dataset NAME (with --data), --ref-folder DIR or --ref-stats FILE");
    if (p.dataset.empty()) {
      SAGAN_CHECK(p.cfg->dataset != "custom",
                  "{}: the run trained on a program's own data set (dataset \"custom\"), which sagan-eval cannot "
                  "read; give the reference: --dataset NAME (with --data), --ref-folder DIR or --ref-stats FILE",
                  o.checkpoint);
      p.dataset = p.cfg->dataset;
      if (p.data_path.empty()) p.data_path = p.cfg->data_path;
    }
  }
  // Real images are brought to the generator's size: another --resolution
  // would compare images of different sizes.
  SAGAN_CHECK(!p.cfg || o.resolution == 0 || o.resolution == p.cfg->model.resolution,
              "--resolution {}: the generator in {} draws {}x{} images, and the reference is brought to that size; "
              "leave --resolution out",
              o.resolution, o.checkpoint, p.cfg ? p.cfg->model.resolution : 0, p.cfg ? p.cfg->model.resolution : 0);
  p.upscale = io::parse_upscale(!o.resize.empty() ? o.resize : p.cfg ? p.cfg->resize : "bilinear", "--resize");
  if (p.cfg) {
    p.channels = o.channels > 0 ? o.channels : p.cfg->model.image_channels;
    p.resolution = p.cfg->model.resolution;
    // The real images it learned from grew as its run grew them, whatever
    // --resize now does to the reference.
    p.evaluated_upscale = io::upscale_name(io::parse_upscale(p.cfg->resize, "the checkpoint's resize"));
    p.image_size = std::to_string(p.resolution);
  } else {
    plan_folder_geometry(o, p);
  }
  p.features =
      resolve_features(o.features, p.cfg && p.cfg->dataset == "fashion-mnist" ? p.cfg->dataset : p.dataset, p.channels);
  const bool inception = p.features == "inception";
  // A weights file of the features not chosen would be ignored: refused.
  SAGAN_CHECK(inception || o.inception_weights.empty(),
              "--inception-weights: this evaluation uses fmnist features ({}); give --features inception to use "
              "Inception",
              o.features == "auto" ? "--features auto, for Fashion-MNIST and 1-channel images" : "--features fmnist");
  SAGAN_CHECK(!inception || o.fmnist_weights.empty(),
              "--fmnist-weights: this evaluation uses Inception features; give --features fmnist to use the "
              "classifier");
  // A data set that cannot be read is found now, not after the evaluated
  // set's embedding (a quarter of an hour for 10k images in Inception on a CPU).
  if (o.ref_folder.empty() && o.ref_stats.empty())
    p.ref_dataset = open_dataset(p.dataset, p.data_path, o.split_or_train(), p.channels);
  p.net = load_feature_net(p.features, inception ? o.inception_weights : o.fmnist_weights, p.device,
                           inception ? "--inception-weights" : "--fmnist-weights");
  p.net_id = p.net.net->name();
  p.net_fingerprint = file_fingerprint(p.net.file);
  // The weights file the net came from, given or the default: no output may replace it.
  for (const auto& [option, out] : {std::pair{"--json", o.json_path}, std::pair{"--save-stats", o.save_stats_path}})
    cli::check_output_not_input(out, fmt::format("{} {}", option, out), {{"the feature weights", p.net.file}});
  return p;
}

// What statistics record beside the source, so that --ref-stats can refuse
// a file from other weights or another image geometry (which give
// meaningless distances: FID 274 between identical images under two
// weights files). upscale: how the set's smaller images were grown ("none").
std::map<std::string, std::string> stats_metadata(const std::string& desc, const EvalPlan& p,
                                                  const std::string& upscale) {
  return {{"source", desc},
          {"feature_file", p.net.file},
          {"feature_weights", p.net_fingerprint},
          {"resolution", p.image_size},
          {"channels", std::to_string(p.channels)},
          {"upscale", upscale}};
}

// "32" -> "32x32"; "6x5" stays.
std::string size_text(const std::string& size) {
  return size.find('x') == std::string::npos ? size + "x" + size : size;
}

// --ref-stats against this run: the same network weights and, where both
// are known, the same image geometry. Files from before these keys were
// recorded get a warning instead.
void check_ref_stats(const EvalOptions& o, const EvalPlan& p, const StatsFile& rf) {
  SAGAN_CHECK(rf.feature_net == p.net_id, "--ref-stats {}: holds '{}' features, but this run uses '{}' (--features)",
              o.ref_stats, rf.feature_net, p.net_id);
  // The label alone does not make the tensors fit the network.
  SAGAN_CHECK(rf.stats.dim == p.net.net->feature_dim(),
              "--ref-stats {}: its mu has {} values, but '{}' features have {}: the file is damaged or not "
              "sagan-eval's",
              o.ref_stats, rf.stats.dim, p.net_id, p.net.net->feature_dim());
  SAGAN_CHECK(!rf.logits || rf.logits->cols == p.net.net->num_classes(),
              "--ref-stats {}: its logits have {} columns, but '{}' has {} classes: the file is damaged or not "
              "sagan-eval's",
              o.ref_stats, rf.logits ? rf.logits->cols : 0, p.net_id, p.net.net->num_classes());
  const auto has = [&](const char* key) { return rf.metadata.count(key) > 0; };
  if (!has("feature_weights")) {
    fmt::print(stderr,
               "sagan-eval: warning: --ref-stats {} does not record which weights made its features (written by an "
               "older sagan-eval); make sure they were {}\n",
               o.ref_stats, p.net.file);
  } else {
    SAGAN_CHECK(rf.metadata.at("feature_weights") == p.net_fingerprint,
                "--ref-stats {}: its features come from other {} weights ({}) than this run's {}: their distances "
                "would mean nothing; recompute the statistics",
                o.ref_stats, p.net_id, has("feature_file") ? rf.metadata.at("feature_file") : "unnamed", p.net.file);
  }
  // "0": a folder at its own size, which files before 2026-12-06 recorded
  // instead of the size itself.
  if (!has("resolution") || rf.metadata.at("resolution") == "0")
    fmt::print(stderr,
               "sagan-eval: warning: --ref-stats {} does not record the size of its images (written by an older "
               "sagan-eval); make sure they were {}\n",
               o.ref_stats, size_text(p.image_size));
  else
    SAGAN_CHECK(rf.metadata.at("resolution") == p.image_size,
                "--ref-stats {}: made from {} images, but this run's are {} (--resolution)", o.ref_stats,
                size_text(rf.metadata.at("resolution")), size_text(p.image_size));
  // Smaller images grown another way (bilinear vs padded) differ as much as
  // another data set; "none": nothing was grown, so nothing to compare.
  const std::string up = has("upscale") ? rf.metadata.at("upscale") : "none";
  if (up != "none" && p.evaluated_upscale != "none")
    SAGAN_CHECK(up == p.evaluated_upscale,
                "--ref-stats {}: its smaller images were grown by '{}', but this run's by '{}' ({})", o.ref_stats, up,
                p.evaluated_upscale, p.cfg ? "the run's --resize" : "--resize");
  if (has("channels"))
    SAGAN_CHECK(rf.metadata.at("channels") == std::to_string(p.channels),
                "--ref-stats {}: made from {}-channel images, but this run's have {} (--channels)", o.ref_stats,
                rf.metadata.at("channels"), p.channels);
}

// Statistics of the evaluated set: the generator's samples or the folder.
StatsFile evaluated_stats(const EvalOptions& o, const EvalPlan& p, std::string& desc) {
  std::unique_ptr<ImageSource> evaluated;
  if (p.cfg) {
    GeneratorSpec gs;
    gs.checkpoint = o.checkpoint;
    gs.weights = o.weights;
    gs.num_samples = o.num_samples;
    gs.seed = o.seed;
    gs.device = p.device;
    evaluated = generator_source(gs);
  } else {
    // o.resolution, not p.resolution: without --resolution an image of
    // another size is an error, not silently resized.
    evaluated = folder_source(o.folder, p.channels, o.resolution, o.num_samples, p.upscale, o.seed);
  }
  cli::ProgressLine progress(p.cfg ? "embedding generated" : "embedding folder", !o.quiet);
  desc = evaluated->describe();
  StatsFile ev = make_stats(embed(*evaluated, *p.net.net, o.batch, std::ref(progress)), p.net_id,
                            stats_metadata(desc, p, p.evaluated_upscale));
  if (!o.save_stats_path.empty()) {
    save_stats(o.save_stats_path, ev);
    if (!o.quiet) fmt::print(stderr, "sagan-eval: wrote statistics to {}\n", o.save_stats_path);
  }
  return ev;
}

// Statistics of the reference: saved, a folder, or the data set (cached
// under --cache).
StatsFile reference_stats(const EvalOptions& o, const EvalPlan& p, std::string& desc) {
  if (!o.ref_stats.empty()) {
    StatsFile rf = load_stats(o.ref_stats);
    check_ref_stats(o, p, rf);
    desc = fmt::format("statistics {} ({})", o.ref_stats,
                       rf.metadata.count("source") ? rf.metadata.at("source") : "no description");
    return rf;
  }
  std::unique_ptr<ImageSource> reference;
  std::string upscale = io::upscale_name(p.upscale);
  if (!o.ref_folder.empty()) {
    reference = folder_source(o.ref_folder, p.channels, p.resolution, o.real_count(), p.upscale, o.seed);
  } else {
    const auto& ds = p.ref_dataset;
    if (ds->height() >= p.resolution && ds->width() >= p.resolution) upscale = "none";  // only brought down
    reference = dataset_source(ds, p.resolution, p.channels, o.real_count(), o.seed, p.upscale);
  }
  desc = reference->describe();
  if (o.real_count() > 0 && reference->size() < o.real_count())
    fmt::print(stderr, "sagan-eval: note: {} real images asked for ({}), the reference has {}: all of them are used\n",
               o.real_count(), o.num_real ? "--num-real" : "--num-real defaults to -n", reference->size());
  auto make = [&] {
    cli::ProgressLine progress("embedding reference", !o.quiet);
    return make_stats(embed(*reference, *p.net.net, o.batch, std::ref(progress)), p.net_id,
                      stats_metadata(desc, p, upscale));
  };
  if (o.cache_dir.empty() || !o.ref_folder.empty()) return make();
  bool hit = false;
  const std::string key = cache_key(fmt::format("{}-{}-{}px-{}ch-n{}-{}", p.dataset, o.split_or_train(), p.resolution,
                                                p.channels, reference->size(), p.features),
                                    desc + "|" + p.net_id + "|" + p.net_fingerprint);
  StatsFile rf = cached_stats(o.cache_dir, key, p.net_id, make, &hit,
                              [](const std::string& why) { fmt::print(stderr, "sagan-eval: warning: {}\n", why); });
  if (!o.quiet)
    fmt::print(stderr, "sagan-eval: reference statistics {} {}/{}.safetensors\n", hit ? "from" : "cached in",
               o.cache_dir, key);
  return rf;
}

int run(const EvalOptions& o) {
  o.check();
  const MetricOptions mo = metric_options(o);
  const EvalPlan p = plan(o);
  if (!o.quiet) fmt::print(stderr, "sagan-eval: {} features ({})\n", p.net_id, p.net.file);
  const auto t0 = std::chrono::steady_clock::now();
  std::string eval_desc, ref_desc;
  // Saved statistics are read and checked first: a mismatch stops before
  // any embedding.
  std::optional<StatsFile> saved_ref;
  if (!o.ref_stats.empty()) saved_ref = reference_stats(o, p, ref_desc);
  const StatsFile ev = evaluated_stats(o, p, eval_desc);
  const StatsFile rf = saved_ref ? std::move(*saved_ref) : reference_stats(o, p, ref_desc);
  Report r = compare(ev, rf, mo);
  r.evaluated = eval_desc;
  r.reference = ref_desc;
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const std::string& n : r.notes) fmt::print(stderr, "warning: {}\n", n);
  fmt::print("sagan-eval results ({:.0f} s)\n{}", total_s, r.table());
  if (!o.json_path.empty()) {
    io::write_file_atomic(o.json_path, r.json());
    if (!o.quiet) fmt::print(stderr, "sagan-eval: wrote {}\n", o.json_path);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sagan-eval: FID, KID, Inception Score and precision/recall of a sagan-train generator (EMA weights by\n"
      "default) against a data set, of one image folder against another, or of either against saved\n"
      "statistics. See docs/evaluation.md."};
  EvalOptions o;
  add_options(app, o);
  return cli::parse_and_run("sagan-eval", app, argc, argv, [&] { return run(o); });
}
