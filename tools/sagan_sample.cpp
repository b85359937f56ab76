// sagan-sample: images from a checkpoint's generator (EMA weights by
// default), as one grid or as separate PNGs, for chosen classes, with
// optional truncation of z.
#include <CLI/CLI.hpp>
#include <filesystem>

#include "core/io/image.h"
#include "core/ops.h"
#include "models/checkpoint_file.h"
#include "models/generator.h"
#include "models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  return cli::guarded_main("sagan-sample", [&]() -> int {
    CLI::App app{"sagan-sample: generate images from a sagan-train checkpoint (or run directory)."};
    std::string ckpt, out = "samples.png", separate, weights = "ema", device = "auto", classes_str;
    int64_t n = 64, nrow = 0;
    uint64_t seed = 0;
    double truncation = 0.0;
    app.add_option("checkpoint", ckpt, "A checkpoint .safetensors file, or a run directory (its newest checkpoint)")
        ->required();
    app.add_option("-n,--num", n, "Number of images")->capture_default_str();
    app.add_option("--classes", classes_str,
                   "Comma-separated class ids, cycled over the images (default: all classes in turn)");
    app.add_option("--truncation", truncation,
                   "Resample z components with |z| above this threshold (0 = off; e.g. 0.5)")
        ->capture_default_str();
    app.add_option("--seed", seed, "Seed for z")->capture_default_str();
    app.add_option("-o,--out", out, "Grid PNG to write")->capture_default_str();
    app.add_option("--nrow", nrow, "Images per grid row (default: number of classes, or 8)");
    app.add_option("--separate", separate, "Also write each image as <dir>/<index>_class<k>.png");
    app.add_option("--weights", weights, "ema (default) or g (the raw generator)")->check(CLI::IsMember({"ema", "g"}));
    app.add_option("--device", device, "auto | cpu | cuda | cuda:N")->capture_default_str();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    SAGAN_CHECK(n > 0, "--num must be positive, got {}", n);
    SAGAN_CHECK(truncation >= 0, "--truncation must be >= 0 (0 = off), got {}", truncation);
    SAGAN_CHECK(nrow >= 0, "--nrow must be >= 0, got {}", nrow);
    const CheckpointFile c = open_checkpoint(ckpt);
    const TrainConfig& cfg = c.config;
    const int64_t K = cfg.model.num_classes;
    const std::vector<int64_t> classes = cli::parse_class_ids(classes_str, K, c.path);

    Device dev = resolve_device(device);
    Rng init(0);
    SaganGenerator g(cfg.model, init);
    load_generator(g, c, weights);
    g.to(dev);
    g.eval();

    std::vector<int64_t> y(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n && !classes.empty(); ++i)
      y[static_cast<size_t>(i)] = classes[static_cast<size_t>(i) % classes.size()];
    Tensor imgs;
    {
      NoGradGuard ng;
      imgs = g.forward(cli::sample_latents(n, cfg.model.z_dim, seed, truncation, dev),
                       K > 0 ? Tensor::from_vector(y, {n}, dev) : Tensor());
    }
    int64_t row = nrow > 0 ? nrow : (classes.empty() ? 8 : static_cast<int64_t>(classes.size()));
    io::save_image_grid(out, imgs, row);
    fmt::print("sagan-sample: wrote {} ({} images from {} weights of {}, step {})\n", out, n, weights, c.path, c.step);
    if (!separate.empty()) {
      fs::create_directories(separate);
      for (int64_t i = 0; i < n; ++i) {
        std::string p = (fs::path(separate) / fmt::format("{:05}_class{}.png", i, y[static_cast<size_t>(i)])).string();
        io::save_image_grid(p, imgs.slice(0, i, i + 1), 1, 0);
      }
      fmt::print("sagan-sample: wrote {} images to {}\n", n, separate);
    }
    return 0;
  });
}
