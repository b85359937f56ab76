// sagan-train: trains SAGAN. With no arguments: class-conditional SAGAN-32
// on Fashion-MNIST from Debian's dataset-fashion-mnist package.
#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/train_run.h"
#include "tools/cli_common.h"

using namespace sagan;

namespace {
std::string config_file_arg(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
  }
  return "";
}
}  // namespace

int main(int argc, char** argv) {
  return cli::guarded_main("sagan-train", [&]() -> int {
    TrainConfig cfg;
    // A JSON config file sets the defaults that command-line options override;
    // TOML files are read by CLI11 itself (keys are the long option names).
    std::string cfg_file = config_file_arg(argc, argv);
    bool json_cfg = cfg_file.size() > 5 && cfg_file.compare(cfg_file.size() - 5, 5, ".json") == 0;
    if (json_cfg) {
      std::ifstream in(cfg_file);
      SAGAN_CHECK(in.good(), "--config {}: cannot read the file", cfg_file);
      std::stringstream ss;
      ss << in.rdbuf();
      cfg = TrainConfig::from_json(ss.str(), cfg_file);
    }

    CLI::App app{
        "sagan-train: train a Self-Attention GAN (hinge loss, TTUR Adam, EMA generator).\n"
        "With no options it trains class-conditional SAGAN-32 on Fashion-MNIST\n"
        "(Debian package dataset-fashion-mnist) and writes a run directory under runs/.\n"
        "Ctrl-C stops after the current step and saves a checkpoint; --resume continues exactly."};
    app.get_formatter()->column_width(36);
    if (json_cfg)
      app.add_option("--config", cfg_file, "Config file: .json (keys as in a run's config.json) or .toml");
    else
      app.set_config("--config", "",
                     "Config file: .json (keys as in a run's config.json) or .toml (long option names)");

    RunOptions ro;
    bool quiet = false;
    app.add_option("--resume", ro.resume_dir, "Continue the run in this directory from its newest checkpoint");

    auto* data = app.add_option_group("Data");
    data->add_option("--dataset", cfg.dataset, "fashion-mnist | cifar10 | folder")->capture_default_str();
    data->add_option("--data", cfg.data_path,
                     "Data location: Fashion-MNIST dir (default /usr/share/datasets/fashion-mnist), "
                     "CIFAR-10 binary dir, or image folder with one sub-folder per class");
    data->add_flag("--hflip,!--no-hflip", cfg.hflip, "Random horizontal flips")->capture_default_str();
    data->add_flag("--unconditional", cfg.unconditional, "Ignore labels (num_classes = 0)");

    auto* model = app.add_option_group("Model");
    model->add_option("--resolution", cfg.model.resolution, "Image side, a power of two >= 32")->capture_default_str();
    model->add_option("--ch", cfg.model.ch, "Width multiplier (32x32: G 4ch, D 2ch wide)")->capture_default_str();
    model->add_option("--z-dim", cfg.model.z_dim, "Latent size")->capture_default_str();
    std::vector<int64_t> g_attn, d_attn;
    model->add_option("--g-attn", g_attn,
                      "Rng attention resolution(s) (default: resolution/2, max 64; 0 = none)");
    model->add_option("--d-attn", d_attn, "Discriminator attention resolution(s) (same default)");
    bool unpooled = false;
    model->add_flag("--unpooled-attention", unpooled,
                    "The paper's attention (no max-pool, values C->C, no output conv)");

    auto* optg = app.add_option_group("Optimisation");
    optg->add_option("--steps", cfg.steps, "Rng steps to train to")->capture_default_str();
    optg->add_option("--batch-size", cfg.batch_size, "Batch size")->capture_default_str();
    optg->add_option("--n-dis", cfg.n_dis, "Discriminator steps per generator step")->capture_default_str();
    optg->add_option("--lr-g", cfg.lr_g, "Rng learning rate")->capture_default_str();
    optg->add_option("--lr-d", cfg.lr_d, "Discriminator learning rate")->capture_default_str();
    optg->add_option("--beta1", cfg.beta1, "Adam beta1")->capture_default_str();
    optg->add_option("--beta2", cfg.beta2, "Adam beta2")->capture_default_str();
    optg->add_option("--adam-eps", cfg.adam_eps, "Adam epsilon")->capture_default_str();
    optg->add_option("--ema-decay", cfg.ema_decay, "EMA decay of the sampling generator")->capture_default_str();
    optg->add_option("--ema-start", cfg.ema_start, "Step from which the EMA averages (before: copies G)")
        ->capture_default_str();
    optg->add_option("--grad-clip", cfg.grad_clip, "Clip each network's global gradient norm (0 = off)")
        ->capture_default_str();
    optg->add_option("--seed", cfg.seed, "Seed of initialisation, data order, latents")->capture_default_str();
    optg->add_option("--device", cfg.device, "auto | cpu | cuda | cuda:N")->capture_default_str();

    auto* out = app.add_option_group("Output");
    out->add_option("--run-dir", cfg.run_dir, "Run directory (default runs/<date-time>); must not hold a run");
    out->add_option("--log-every", cfg.log_every, "Metrics row (CSV, TensorBoard) every N steps")
        ->capture_default_str();
    out->add_option("--sample-every", cfg.sample_every, "Sample grid (PNG, EMA G) every N steps")
        ->capture_default_str();
    out->add_option("--checkpoint-every", cfg.checkpoint_every, "Checkpoint every N steps")->capture_default_str();
    out->add_option("--keep-checkpoints", cfg.keep_checkpoints, "Checkpoints kept")->capture_default_str();
    out->add_option("--sample-per-class", cfg.sample_per_class, "Grid rows (one column per class)")
        ->capture_default_str();
    out->add_flag("--quiet", quiet, "No progress output");

    auto* fd = app.add_option_group("Frechet distance (docs/evaluation.md)");
    fd->add_option("--fd-every", cfg.fd_every, "FD of the EMA G every N steps, in metrics.csv / TensorBoard (0 = off)")
        ->capture_default_str();
    fd->add_option("--fd-samples", cfg.fd_samples, "Generated and real images per FD")->capture_default_str();
    fd->add_option("--fd-features", cfg.fd_features, "auto | fmnist | inception (auto: fmnist on Fashion-MNIST)")
        ->capture_default_str();
    fd->add_option("--fd-weights", cfg.fd_weights,
                   "Feature-net weights (inception: required; fmnist: default committed)");

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (!g_attn.empty()) cfg.model.g_attn_res = g_attn == std::vector<int64_t>{0} ? std::vector<int64_t>{} : g_attn;
    if (!d_attn.empty()) cfg.model.d_attn_res = d_attn == std::vector<int64_t>{0} ? std::vector<int64_t>{} : d_attn;
    if (unpooled) cfg.model.pooled_attention = false;
    ro.progress = !quiet;
    if (!ro.resume_dir.empty()) {
      if (app.get_option_group("Optimisation")->get_option("--steps")->count() > 0) ro.steps_override = cfg.steps;
    } else {
      // Reject invalid values before any work (the data set's classes and
      // channels are not known yet, so check with placeholders).
      TrainConfig probe = cfg;
      probe.model.num_classes = cfg.unconditional ? 0 : 10;
      probe.validate();
    }
    run_training(cfg, ro);
    return 0;
  });
}
