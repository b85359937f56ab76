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
    // Both outputs checked before either is written, and nothing made
    // until the images are: a failed call leaves no folder behind.
    if (!separate.empty()) check_grid_outside_separate();
    cli::check_png_output(out, "-o " + out);
    cli::check_output_not_input(out, "-o " + out, {{"the checkpoint", checkpoint}});
    if (!separate.empty()) check_separate();
  }
  // The grid inside the folder of samples would be overwritten by image 0,
  // or mix with them in a later sagan-eval --folder.
  void check_grid_outside_separate() const {
    fs::path dir = fs::absolute(separate).lexically_normal();
    if (dir.filename().empty()) dir = dir.parent_path();  // "sep/"
    const fs::path grid = fs::absolute(out).lexically_normal();
    SAGAN_CHECK(!io::path_within(dir, grid),
                "-o {}: inside --separate {}, which is to hold the samples alone; write the grid elsewhere", out,
                separate);
  }
  void check_separate() const {
    const std::string what = "--separate " + separate;
    std::error_code ec;
    const fs::path dir = fs::absolute(separate).lexically_normal();
    if (!fs::exists(separate, ec)) {
      // Made when the images are written: its nearest existing folder must take it.
      fs::path parent = dir.parent_path();
      while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.root_path()) parent = parent.parent_path();
      SAGAN_CHECK(fs::is_directory(parent, ec), "{}: {} is not a folder", what, parent.string());
      io::check_writable_dir(parent.string(), what);
      return;
    }
    io::check_writable_dir(separate, what);
    // Samples of an earlier call there, at any depth, would mix with these
    // unseen (sagan-eval --folder reads a folder and its subfolders).
    for (fs::recursive_directory_iterator it(separate, ec), end; !ec && it != end; it.increment(ec))
      SAGAN_CHECK(!is_sample_name(it->path().filename().string()),
                  "{}: already holds samples ({}); remove them or choose an empty folder", what, it->path().string());
    SAGAN_CHECK(!ec, "{}: cannot read the folder: {}", what, ec.message());
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
                 "Resample z components with |z| above this threshold (0 = off; else at least 0.001; e.g. 0.5)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for z")->capture_default_str();
  app.add_option("-o,--out", o.out, "Grid PNG to write (an existing file is replaced)")->capture_default_str();
  app.add_option(
         "--nrow", o.nrow,
         "Images per grid row (0, the default: one per id of --classes, repeats counted, or per class of the model; 8 "
         "for an unconditional model)")
      ->capture_default_str();
  app.add_option("--separate", o.separate,
                 "Also write each image as <dir>/<index>_class<k>.png (class 0 for an unconditional model); the "
                 "folder is made if missing and must hold no samples yet; -o may not lie inside it")
      ->check(cli::not_empty());
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
  std::error_code ec;
  fs::create_directories(dir, ec);
  SAGAN_CHECK(!ec, "--separate {}: cannot create the folder: {}", dir, ec.message());
  for (int64_t i = 0; i < imgs.size(0); ++i) {
    std::string p = (fs::path(dir) / fmt::format("{:05}_class{}.png", i, y[static_cast<size_t>(i)])).string();
    try {
      io::save_image_grid(p, imgs.slice(0, i, i + 1), 1, 0);
    } catch (const Error& e) {
      SAGAN_FAIL("--separate {}: {}; {} of {} images were written there: remove them before trying again", dir,
                 e.what(), i, imgs.size(0));
    }
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
              "--num {}: sagan-sample holds every image in memory for the grid, at most 2^31 values: at most {} "
              "images of {}x{}x{}; call it several times with other --seed values for more",
              o.n, (int64_t{1} << 31) / pixels, model.image_channels, model.resolution, model.resolution);
  const std::vector<int64_t> y = image_classes(o.n, classes);
  const Tensor z = cli::sample_latents(o.n, model.z_dim, o.seed, o.truncation, dev);
  const Tensor labels = model.num_classes > 0 ? Tensor::from_vector(y, {o.n}, dev) : Tensor();
  // In batches of 256: G's activations for all n at once would need far more
  // memory than the images (eval mode: the images do not depend on it).
  constexpr int64_t kBatch = 256;
  std::vector<Tensor> parts;
  {
    NoGradGuard ng;
    cli::ProgressLine progress("generating", o.n > kBatch);
    for (int64_t i = 0; i < o.n; i += kBatch) {
      const int64_t e = std::min(o.n, i + kBatch);
      parts.push_back(g.forward(z.slice(0, i, e), labels.defined() ? labels.slice(0, i, e) : Tensor()));
      progress(e, o.n);
    }
  }
  const Tensor imgs = parts.size() == 1 ? parts[0] : concat(parts, 0);
  const int64_t row = o.nrow > 0 ? o.nrow : (classes.empty() ? 8 : static_cast<int64_t>(classes.size()));
  try {
    io::save_image_grid(o.out, imgs, row);
  } catch (const Error& e) {
    SAGAN_FAIL("-o {}: {}", o.out, e.what());
  }
  fmt::print("sagan-sample: wrote {} ({} image{} from {} weights of {}, step {})\n", o.out, o.n, o.n == 1 ? "" : "s",
             o.weights, c.path, c.step);
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
