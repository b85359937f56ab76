// sagan-sample: images from a checkpoint's generator (EMA weights by
// default), as one grid or as separate PNGs, for chosen classes, with
// optional truncation of z.
#include <CLI/CLI.hpp>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/image.h"
#include "sagan/core/ops.h"
#include "sagan/core/text.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"
#include "sagan/models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;
namespace fs = std::filesystem;

namespace {

struct SampleOptions {
  std::string checkpoint;  // a .safetensors file or a run directory
  std::string out = "samples.png", separate, weights = "ema", device = "auto", classes;
  int64_t n = 64, nrow = 0;
  uint64_t seed = 0;
  double truncation = 0.0;

  void check() const {
    SAGAN_CHECK(n > 0, "--num must be positive, got {}", n);
    check_truncation(truncation);
    SAGAN_CHECK(nrow >= 0, "--nrow: must be positive (or 0: the default), got {}", nrow);
    // Both outputs checked before either is written.
    cli::check_png_output(out, "-o " + out);
    if (!separate.empty()) {
      io::check_writable_dir(separate, "--separate " + separate);
      // Samples of an earlier call there would mix with these unseen (a
      // later sagan-eval --folder counts every image in it).
      for (const auto& e : io::list_directory(separate, "--separate"))
        SAGAN_CHECK(!is_sample_name(e.path().filename().string()),
                    "--separate {}: already holds samples ({}); remove them or choose an empty folder", separate,
                    e.path().filename().string());
    }
  }
  // <index>_class<k>.png, as write_separate names them.
  static bool is_sample_name(const std::string& name) {
    const size_t u = name.find("_class");
    return u != std::string::npos && name.size() > 4 && name.compare(name.size() - 4, 4, ".png") == 0 &&
           all_digits(name.substr(0, u)) && all_digits(name.substr(u + 6, name.size() - 4 - u - 6));
  }
};

void add_options(CLI::App& app, SampleOptions& o) {
  app.add_option("checkpoint", o.checkpoint,
                 "A checkpoint .safetensors file, or a run directory (its newest checkpoint)")
      ->required();
  app.add_option("-n,--num", o.n, "Number of images")->capture_default_str();
  app.add_option("--classes", o.classes,
                 "Comma-separated class ids, cycled over the images (default: all classes in turn)");
  app.add_option("--truncation", o.truncation,
                 "Resample z components with |z| above this threshold (0 = off; e.g. 0.5)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for z")->capture_default_str();
  app.add_option("-o,--out", o.out, "Grid PNG to write")->capture_default_str();
  app.add_option(
      "--nrow", o.nrow,
      "Images per grid row (0, the default: one per class drawn, those of --classes or all the model's; 8 for an "
      "unconditional model)");
  app.add_option("--separate", o.separate, "Also write each image as <dir>/<index>_class<k>.png");
  app.add_option("--weights", o.weights, "ema (default) or g (the raw generator)")->check(CLI::IsMember({"ema", "g"}));
  app.add_option("--device", o.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
}

// Each image's class: the given ids cycled (0 for an unconditional model).
std::vector<int64_t> image_classes(int64_t n, const std::vector<int64_t>& classes) {
  std::vector<int64_t> y(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n && !classes.empty(); ++i)
    y[static_cast<size_t>(i)] = classes[static_cast<size_t>(i) % classes.size()];
  return y;
}

void write_separate(const std::string& dir, const Tensor& imgs, const std::vector<int64_t>& y) {
  fs::create_directories(dir);
  for (int64_t i = 0; i < imgs.size(0); ++i) {
    std::string p = (fs::path(dir) / fmt::format("{:05}_class{}.png", i, y[static_cast<size_t>(i)])).string();
    io::save_image_grid(p, imgs.slice(0, i, i + 1), 1, 0);
  }
}

int run(const SampleOptions& o) {
  o.check();
  const CheckpointFile c = open_checkpoint(o.checkpoint);
  const SaganConfig& model = c.config.model;
  const std::vector<int64_t> classes = cli::parse_class_ids(o.classes, model.num_classes, c.path);

  const Device dev = resolve_device(o.device);
  Rng init(0);
  SaganGenerator g(model, init);
  load_generator(g, c, o.weights);
  g.to(dev);
  g.eval();

  // Every image is kept for the grid: refuse what could not be held
  // (float32 pixels), rather than fail in an allocation.
  const int64_t pixels = int64_t{model.image_channels} * model.resolution * model.resolution;
  SAGAN_CHECK(o.n <= (int64_t{1} << 31) / pixels,
              "--num {}: {} images of {}x{}x{} do not fit in memory as one grid; at most {} here",
              o.n, o.n, model.image_channels, model.resolution, model.resolution, (int64_t{1} << 31) / pixels);
  const std::vector<int64_t> y = image_classes(o.n, classes);
  const Tensor z = cli::sample_latents(o.n, model.z_dim, o.seed, o.truncation, dev);
  const Tensor labels = model.num_classes > 0 ? Tensor::from_vector(y, {o.n}, dev) : Tensor();
  // In batches of 256: G's activations for all n at once would need far more
  // memory than the images (eval mode: the images do not depend on it).
  constexpr int64_t kBatch = 256;
  std::vector<Tensor> parts;
  {
    NoGradGuard ng;
    for (int64_t i = 0; i < o.n; i += kBatch) {
      const int64_t e = std::min(o.n, i + kBatch);
      parts.push_back(g.forward(z.slice(0, i, e), labels.defined() ? labels.slice(0, i, e) : Tensor()));
    }
  }
  const Tensor imgs = parts.size() == 1 ? parts[0] : concat(parts, 0);
  const int64_t row = o.nrow > 0 ? o.nrow : (classes.empty() ? 8 : static_cast<int64_t>(classes.size()));
  io::save_image_grid(o.out, imgs, row);
  fmt::print("sagan-sample: wrote {} ({} images from {} weights of {}, step {})\n", o.out, o.n, o.weights, c.path,
             c.step);
  if (!o.separate.empty()) {
    write_separate(o.separate, imgs, y);
    fmt::print("sagan-sample: wrote {} images to {}\n", o.n, o.separate);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sagan-sample: generate images from a sagan-train checkpoint (or run directory)."};
  SampleOptions o;
  add_options(app, o);
  return cli::parse_and_run("sagan-sample", app, argc, argv, [&] { return run(o); });
}
