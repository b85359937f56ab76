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
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/io/atomic_file.h"
#include "models/quality/evaluate.h"
#include "models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;
using namespace sagan::quality;
namespace fs = std::filesystem;

namespace {

// "\r  embedding generated: 3400/10000  120 img/s  eta 0:00:55" on stderr.
class ProgressLine {
 public:
  ProgressLine(std::string what, bool on)
      : what_(std::move(what)), on_(on), tty_(::isatty(STDERR_FILENO) != 0), t0_(std::chrono::steady_clock::now()) {}
  void operator()(int64_t done, int64_t total) {
    if (!on_) return;
    // A terminal gets one line redrawn; a log file one line per tenth.
    const int64_t tenth = total > 0 ? done * 10 / total : 10;
    if (!tty_ && tenth == last_tenth_ && done < total) return;
    last_tenth_ = tenth;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = s > 0 ? static_cast<double>(done) / s : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
    const auto e = static_cast<int64_t>(eta);
    std::fprintf(stderr, "%s  embedding %s: %lld/%lld  %.0f img/s  eta %lld:%02lld:%02lld   ", tty_ ? "\r" : "",
                 what_.c_str(), static_cast<long long>(done), static_cast<long long>(total), rate,
                 static_cast<long long>(e / 3600), static_cast<long long>(e / 60 % 60), static_cast<long long>(e % 60));
    if (done >= total) std::fprintf(stderr, "(%.0f s)", s);
    if (!tty_ || done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  std::string what_;
  bool on_, tty_;
  int64_t last_tenth_ = -1;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

int main(int argc, char** argv) {
  return cli::guarded_main("sagan-eval", [&]() -> int {
    CLI::App app{
        "sagan-eval: FID, KID, Inception Score and precision/recall of a sagan-train generator (EMA weights by\n"
        "default) against a data set, of one image folder against another, or of either against saved\n"
        "statistics. See docs/evaluation.md."};
    app.get_formatter()->column_width(38);
    std::string checkpoint, folder, ref_folder, ref_stats, save_stats_path, json_path, cache_dir;
    std::string dataset, data_path, split = "train", features = "auto", inception_weights, fmnist_weights;
    std::string weights = "ema", device = "auto", metrics = "fid,kid,is,pr";
    int64_t num_samples = 10000, num_real = -1, batch = 100, resolution = 0, channels = 0;
    int64_t kid_subsets = 100, kid_subset_size = 1000, is_splits = 10, pr_k = 3;
    uint64_t seed = 0;
    bool quiet = false;

    app.add_option("checkpoint", checkpoint,
                   "sagan-train checkpoint (.safetensors) or run directory (newest checkpoint)");
    auto* src = app.add_option_group("Images");
    src->add_option("--folder", folder, "Evaluate this folder of .png/.jpg images (recursive) instead of a generator");
    src->add_option("--weights", weights, "Rng weights: ema (default) or g")->check(CLI::IsMember({"ema", "g"}));
    src->add_option("-n,--num-samples", num_samples,
                    "Generated images (or at most this many from --folder); 50000 is the convention")
        ->capture_default_str();
    src->add_option("--seed", seed, "Seed of z, labels, the real subset and KID subsets")->capture_default_str();
    auto* ref = app.add_option_group("Reference");
    ref->add_option("--dataset", dataset, "fashion-mnist | cifar10 | folder (default: the checkpoint's)");
    ref->add_option("--data", data_path, "Data location, as for sagan-train (default: the checkpoint's)");
    ref->add_option("--split", split, "train (the convention) or test")->capture_default_str();
    ref->add_option("--num-real", num_real, "Real images used (default: --num-samples; 0 = the whole data set)");
    ref->add_option("--ref-folder", ref_folder, "Compare against this folder of images");
    ref->add_option("--ref-stats", ref_stats, "Compare against a statistics file (from --save-stats or --cache)");
    ref->add_option("--cache", cache_dir, "Directory caching data-set statistics (embedded once per setting)");
    auto* feat = app.add_option_group("Features");
    feat->add_option("--features", features,
                     "auto | fmnist | inception (auto: fmnist for Fashion-MNIST and 1-channel data)")
        ->check(CLI::IsMember({"auto", "fmnist", "inception"}))
        ->capture_default_str();
    feat->add_option("--inception-weights", inception_weights,
                     "pytorch-fid Inception weights converted by tools/convert_fid_inception.py");
    feat->add_option("--fmnist-weights", fmnist_weights,
                     "Fashion-MNIST classifier weights (default: the committed file)");
    feat->add_option("--resolution", resolution,
                     "Resize folder images to this square size (default: keep; all must match)");
    feat->add_option("--channels", channels, "1 or 3 channels for folders (default: the generator's, else 3)");
    auto* met = app.add_option_group("Metrics");
    met->add_option("--metrics", metrics, "Comma-separated subset of fid,kid,is,pr")->capture_default_str();
    met->add_option("--kid-subsets", kid_subsets, "KID subsets")->capture_default_str();
    met->add_option("--kid-subset-size", kid_subset_size, "KID subset size")->capture_default_str();
    met->add_option("--is-splits", is_splits, "Inception Score splits")->capture_default_str();
    met->add_option("--pr-k", pr_k, "k of the k-NN manifolds for precision/recall")->capture_default_str();
    auto* out = app.add_option_group("Output");
    out->add_option("--json", json_path, "Also write the results as JSON to this file");
    out->add_option("--save-stats", save_stats_path, "Save the evaluated set's statistics (and features) here");
    out->add_option("--batch-size", batch, "Images per forward pass")->capture_default_str();
    out->add_option("--device", device, "auto | cpu | cuda | cuda:N")->capture_default_str();
    out->add_flag("--quiet", quiet, "No progress display");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }

    // ---- what is compared with what
    SAGAN_CHECK(checkpoint.empty() != folder.empty(),
                "give exactly one set to evaluate: a checkpoint / run directory, or --folder DIR (got {})",
                checkpoint.empty() ? "neither" : "both");
    SAGAN_CHECK(!(!ref_folder.empty() && !ref_stats.empty()),
                "--ref-folder and --ref-stats are alternatives; give one");
    SAGAN_CHECK(num_samples > 0, "--num-samples must be positive, got {}", num_samples);
    SAGAN_CHECK(batch > 0, "--batch-size must be positive, got {}", batch);
    SAGAN_CHECK(resolution >= 0, "--resolution must be >= 0, got {}", resolution);
    SAGAN_CHECK(channels == 0 || channels == 1 || channels == 3, "--channels must be 1 or 3, got {}", channels);
    MetricOptions mo;
    mo.fid = mo.kid = mo.is = mo.pr = false;
    {
      std::stringstream ss(metrics);
      std::string m;
      while (std::getline(ss, m, ',')) {
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
    }
    mo.kid_subsets = kid_subsets;
    mo.kid_subset_size = kid_subset_size;
    mo.is_splits = is_splits;
    mo.pr_k = pr_k;
    mo.seed = seed;
    const Device dev = resolve_device(device);

    std::optional<TrainConfig> cfg;
    if (!checkpoint.empty()) cfg = checkpoint_config(checkpoint);
    const bool vs_dataset = ref_folder.empty() && ref_stats.empty();
    if (vs_dataset) {
      SAGAN_CHECK(cfg || !dataset.empty(),
                  "--folder needs a reference: --dataset NAME (with --data), --ref-folder DIR or --ref-stats FILE");
      if (dataset.empty()) {
        dataset = cfg->dataset;
        if (data_path.empty()) data_path = cfg->data_path;
      }
    }
    const int64_t img_channels = channels > 0 ? channels : cfg ? cfg->model.image_channels : 3;
    const int64_t img_res = cfg ? cfg->model.resolution : resolution;

    // ---- the feature network
    features =
        resolve_features(features, cfg && cfg->dataset == "fashion-mnist" ? cfg->dataset : dataset, img_channels);
    LoadedFeatureNet loaded =
        load_feature_net(features, features == "inception" ? inception_weights : fmnist_weights, dev,
                         features == "inception" ? "--inception-weights" : "--fmnist-weights");
    std::unique_ptr<FeatureNet>& net = loaded.net;
    const std::string& net_file = loaded.file;
    const std::string net_id = net->name();

    // ---- the evaluated set
    std::unique_ptr<ImageSource> evaluated;
    if (cfg) {
      GeneratorSpec gs;
      gs.checkpoint = checkpoint;
      gs.weights = weights;
      gs.num_samples = num_samples;
      gs.seed = seed;
      gs.device = dev;
      evaluated = generator_source(gs);
    } else {
      evaluated = folder_source(folder, img_channels, resolution, num_samples);
    }
    if (!quiet) fmt::print(stderr, "sagan-eval: {} features ({})\n", net_id, net_file);
    auto t0 = std::chrono::steady_clock::now();
    ProgressLine p_eval(cfg ? "generated" : "folder", !quiet);
    const std::string eval_desc = evaluated->describe();
    StatsFile ev = make_stats(embed(*evaluated, *net, batch, std::ref(p_eval)), net_id,
                              {{"source", eval_desc}, {"feature_file", net_file}});
    if (!save_stats_path.empty()) {
      save_stats(save_stats_path, ev);
      if (!quiet) fmt::print(stderr, "sagan-eval: wrote statistics to {}\n", save_stats_path);
    }

    // ---- the reference set
    StatsFile rf;
    std::string ref_desc;
    if (!ref_stats.empty()) {
      rf = load_stats(ref_stats);
      SAGAN_CHECK(rf.feature_net == net_id, "--ref-stats {}: holds '{}' features, but this run uses '{}' (--features)",
                  ref_stats, rf.feature_net, net_id);
      ref_desc = fmt::format("statistics {} ({})", ref_stats,
                             rf.metadata.count("source") ? rf.metadata.at("source") : "no description");
    } else {
      std::unique_ptr<ImageSource> reference;
      if (!ref_folder.empty()) {
        reference = folder_source(ref_folder, img_channels, resolution > 0 ? resolution : img_res,
                                  num_real < 0 ? num_samples : num_real);
      } else {
        auto ds = open_dataset(dataset, data_path, split);
        const int64_t count = num_real < 0 ? num_samples : num_real;
        reference = dataset_source(ds, img_res, img_channels, count, seed);
      }
      ref_desc = reference->describe();
      auto make = [&] {
        ProgressLine p_ref("reference", !quiet);
        return make_stats(embed(*reference, *net, batch, std::ref(p_ref)), net_id,
                          {{"source", ref_desc}, {"feature_file", net_file}});
      };
      if (!cache_dir.empty() && ref_folder.empty()) {
        bool hit = false;
        std::string key = cache_key(
            fmt::format("{}-{}-{}px-{}ch-n{}-{}", dataset, split, img_res, img_channels, reference->size(), features),
            ref_desc + "|" + net_id + "|" + file_fingerprint(net_file));
        rf = cached_stats(cache_dir, key, net_id, make, &hit);
        if (!quiet)
          fmt::print(stderr, "sagan-eval: reference statistics {} {}/{}.safetensors\n", hit ? "from" : "cached in",
                     cache_dir, key);
      } else {
        rf = make();
      }
    }

    Report r = compare(ev, rf, mo);
    r.evaluated = eval_desc;
    r.reference = ref_desc;
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const std::string& n : r.notes) fmt::print(stderr, "warning: {}\n", n);
    fmt::print("sagan-eval results ({:.0f} s)\n{}", total_s, r.table());
    if (!json_path.empty()) {
      io::write_file_atomic(json_path, r.json());
      if (!quiet) fmt::print(stderr, "sagan-eval: wrote {}\n", json_path);
    }
    return 0;
  });
}
