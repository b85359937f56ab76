// sagan-attention: the paper's attention-map figure from a checkpoint. For
// generated images (EMA G by default, classes/seed/truncation as
// sagan-sample) or real images (--image, D only), and query points given
// (--queries) or spread automatically (--auto), one PNG row per image: the
// image with the queries marked, then each query's attention map (its row
// of the layer's (N, S) softmax) over the image. See docs/attention.md.
#include <CLI/CLI.hpp>
#include <cmath>

#include "sagan/core/io/image.h"
#include "sagan/core/ops.h"
#include "sagan/models/attention_maps.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"
#include "sagan/models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;

namespace {

struct AttentionOptions {
  std::string checkpoint, out = "attention.png", weights = "ema", device = "auto", classes, queries, net,
                          heat = "minmax";
  std::vector<std::string> images;  // real image files: D's attention on them
  int64_t n = 4, layer = 0, auto_n = 0, scale = 0;
  bool n_given = false, auto_given = false;
  std::vector<std::string> sample_options_given;  // --classes, --seed, --truncation, --weights: G's samples only
  uint64_t seed = 0;
  double truncation = 0.0, alpha = 0.6;

  bool real() const { return !images.empty(); }
  bool use_d() const { return net == "D" || net == "d" || (net.empty() && real()); }
  void check() const {
    SAGAN_CHECK(!(real() && !use_d()),
                "--image: real images go through the discriminator; use --net D (G has no image input)");
    SAGAN_CHECK(n > 0, "--num must be positive, got {}", n);
    SAGAN_CHECK(!(real() && n_given), "--num: not used with --image (one row per image file)");
    // D's attention comes before its class projection, so neither a class
    // nor G's sampling settings change what an image's maps show.
    if (real() && !sample_options_given.empty())
      SAGAN_FAIL(
          "{}: not used with --image: it picks G's samples, and D's attention on a given image does not "
          "depend on it",
          sample_options_given.front());
    SAGAN_CHECK(layer >= 0, "--layer must be >= 0, got {}", layer);
    check_truncation(truncation);
    cli::check_png_output(out, "-o " + out);
    SAGAN_CHECK(scale >= 0 && scale <= 64, "--scale must be in [0, 64] (0 = automatic), got {}", scale);
    SAGAN_CHECK(alpha >= 0 && alpha <= 1, "--alpha must be in [0, 1], got {}", alpha);
    if (auto_given) SAGAN_CHECK(auto_n > 0, "--auto must be positive, got {}", auto_n);
  }
};

void add_options(CLI::App& app, AttentionOptions& o) {
  app.add_option("checkpoint", o.checkpoint,
                 "A checkpoint .safetensors file, or a run directory (its newest checkpoint)")
      ->required();
  app.add_option("--net", o.net, "G (generator; default) or D (discriminator; the default with --image)")
      ->check(CLI::IsMember({"G", "D", "g", "d"}));
  app.add_option("--layer", o.layer, "Attention layer index within the network, in forward order")
      ->capture_default_str();
  auto* q_opt = app.add_option("--queries", o.queries, "Query points \"x,y;x,y\" in image pixels (x = column)");
  auto* a_opt = app.add_option("--auto", o.auto_n, "Spread N query points over each image (default 4)");
  q_opt->excludes(a_opt);
  a_opt->each([&o](const std::string&) { o.auto_given = true; });
  app.add_option("-n,--num", o.n, "Generated images (one figure row each)")
      ->capture_default_str()
      ->each([&o](const std::string&) { o.n_given = true; });
  auto sample_option = [&o](CLI::Option* opt) {
    const std::string name = opt->get_name();
    opt->each([&o, name](const std::string&) { o.sample_options_given.push_back(name); });
  };
  sample_option(app.add_option("--classes", o.classes,
                               "Comma-separated class ids, cycled over the images (default: all classes in turn)"));
  sample_option(app.add_option("--truncation", o.truncation, "Resample z components with |z| above this (0 = off)")
                    ->capture_default_str());
  sample_option(
      app.add_option("--seed", o.seed, "Seed for z (the same images as sagan-sample --seed)")->capture_default_str());
  sample_option(app.add_option("--weights", o.weights, "Generator weights: ema (default) or g")
                    ->check(CLI::IsMember({"ema", "g"})));
  app.add_option("--image", o.images, "Real image file(s) (PNG/JPEG) to run D's attention on, instead of G's samples");
  app.add_option("-o,--out", o.out, "PNG to write")->capture_default_str();
  app.add_option("--scale", o.scale, "Panel pixels per image pixel (0: the smallest giving panels >= 128 px)")
      ->capture_default_str();
  app.add_option("--alpha", o.alpha, "Heat-map opacity over the image, in [0, 1]")->capture_default_str();
  app.add_option("--heat-scale", o.heat, "minmax (each map stretched to its range) or max (weights / peak)")
      ->check(CLI::IsMember({"minmax", "max"}))
      ->capture_default_str();
  app.add_option("--device", o.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
}

// The network whose attention is shown, with its weights.
struct Network {
  std::unique_ptr<SaganGenerator> g;
  std::unique_ptr<SaganDiscriminator> d;
  std::vector<viz::AttentionLayerInfo> layers;
  const char* name;
};

Network load_network(const AttentionOptions& o, const CheckpointFile& ck, Device dev) {
  Network net;
  Rng init(0);
  net.name = o.use_d() ? "D" : "G";
  if (o.use_d()) {
    net.d = std::make_unique<SaganDiscriminator>(ck.config.model, init);
    net.layers = viz::attention_layer_infos(*net.d);
    load_discriminator(*net.d, ck);
    net.d->to(dev);
    net.d->eval();
  } else {
    net.g = std::make_unique<SaganGenerator>(ck.config.model, init);
    net.layers = viz::attention_layer_infos(*net.g);
    load_generator(*net.g, ck, o.weights);
    net.g->to(dev);
    net.g->eval();
  }
  SAGAN_CHECK(!net.layers.empty(), "--net {}: the model in {} has no attention layer in {}", net.name, o.checkpoint,
              net.name);
  if (o.layer >= static_cast<int64_t>(net.layers.size())) {
    std::string list;
    for (auto& i : net.layers) list += fmt::format("\n  {}: {} at {}x{}", i.index, i.name, i.resolution, i.resolution);
    SAGAN_FAIL("--layer {} is out of range: {} has {} attention layer(s):{}", o.layer, net.name, net.layers.size(),
               list);
  }
  return net;
}

// The images looked at (decoded files, or G's samples drawn exactly as
// sagan-sample draws them), their labels, and the layer's attention on them.
struct Looked {
  Tensor images, labels;
  std::vector<int64_t> y;
  viz::AttentionCapture capture;
};

Looked look(const AttentionOptions& o, const CheckpointFile& ck, const std::vector<int64_t>& classes,
            const std::vector<io::Image>& files, Network& net, Device dev) {
  const SaganConfig& m = ck.config.model;
  const int64_t B = o.real() ? static_cast<int64_t>(o.images.size()) : o.n;
  Looked l;
  l.y.assign(static_cast<size_t>(B), 0);
  for (int64_t i = 0; i < B && !classes.empty(); ++i)
    l.y[static_cast<size_t>(i)] = classes[static_cast<size_t>(i) % classes.size()];
  if (m.num_classes > 0) l.labels = Tensor::from_vector(l.y, {B}, dev);
  if (o.real()) {
    std::vector<Tensor> xs;
    for (auto& image : files) xs.push_back(viz::image_tensor(image, m.image_channels, m.resolution));
    l.images = concat(xs, 0).to(dev);
  } else {
    Tensor z = cli::sample_latents(o.n, m.z_dim, o.seed, o.truncation, dev);
    if (!net.g) {
      Rng init(0);
      SaganGenerator g(m, init);
      load_generator(g, ck, o.weights);
      g.to(dev);
      g.eval();
      NoGradGuard ng;
      l.images = g.forward(z, l.labels);
    } else {
      l.capture = viz::capture_attention(*net.g, o.layer, z, l.labels, &l.images);
    }
  }
  if (net.d) l.capture = viz::capture_attention(*net.d, o.layer, l.images, l.labels);
  return l;
}

// One figure row per image; prints each query's peak weight.
io::Image render(const AttentionOptions& o, const viz::AttentionLayerInfo& info, const Looked& l, int64_t R,
                 const std::vector<viz::QueryPoint>& fixed_queries, const viz::RenderOptions& ro) {
  const int64_t auto_n = o.queries.empty() && o.auto_n == 0 ? 4 : o.auto_n;
  std::vector<io::Image> rows;
  for (int64_t b = 0; b < l.images.size(0); ++b) {
    io::Image img = viz::tensor_image(l.images, b);
    std::vector<viz::QueryPoint> qs = fixed_queries.empty() ? viz::auto_queries(img, auto_n) : fixed_queries;
    std::vector<std::vector<double>> maps;
    std::string source = o.real() ? o.images[static_cast<size_t>(b)] : fmt::format("sample {}", b);
    const bool show_class = l.labels.defined() && !o.real();  // D's maps do not depend on the label
    fmt::print("  {}{}:", source, show_class ? fmt::format(" (class {})", l.y[static_cast<size_t>(b)]) : "");
    for (auto& q : qs) {
      int64_t qi = viz::query_index(q, R, info.resolution);
      maps.push_back(l.capture.row(b, qi));
      double peak = *std::max_element(maps.back().begin(), maps.back().end());
      // peak * S: how many times the uniform weight 1/S the strongest key gets.
      fmt::print(" ({},{})->{} peak {:.2f}x", q.x, q.y, qi, peak * static_cast<double>(info.s()));
    }
    fmt::print("\n");
    rows.push_back(viz::render_attention_row(img, qs, maps, info.key_side, ro));
  }
  return viz::stack_rows(rows, ro.padding, ro.background);
}

int run(const AttentionOptions& o) {
  o.check();
  const CheckpointFile ck = open_checkpoint(o.checkpoint);
  const int64_t R = ck.config.model.resolution;
  const std::vector<int64_t> classes = cli::parse_class_ids(o.classes, ck.config.model.num_classes, ck.path);
  // Queries given explicitly are checked now, before any forward.
  const std::vector<viz::QueryPoint> fixed_queries =
      o.queries.empty() ? std::vector<viz::QueryPoint>{} : viz::parse_queries(o.queries, R);
  SAGAN_CHECK(o.auto_n <= R * R, "--auto {}: at most {} query points on a {}x{} image", o.auto_n, R * R, R, R);
  // The image files are read now, before any network, so that a bad one is named first.
  std::vector<io::Image> files;
  for (const std::string& file : o.images) {
    try {
      files.push_back(io::read_image(file));
    } catch (const Error& e) {
      SAGAN_FAIL("--image: {}", e.what());
    }
  }
  const Device dev = resolve_device(o.device);
  Network net = load_network(o, ck, dev);
  const viz::AttentionLayerInfo& info = net.layers[static_cast<size_t>(o.layer)];
  const Looked l = look(o, ck, classes, files, net, dev);

  fmt::print("sagan-attention: {} layer {} '{}' at {}x{}: N = {} queries, S = {} keys ({}x{} {}) from {} (step {})\n",
             net.name, info.index, info.name, info.resolution, info.resolution, info.n(), info.s(), info.key_side,
             info.key_side, info.pooled ? "max-pooled grid" : "grid, unpooled", ck.path, ck.step);
  viz::RenderOptions ro;
  ro.scale = o.scale;
  ro.alpha = o.alpha;
  ro.heat_scale = o.heat == "max" ? viz::HeatScale::Max : viz::HeatScale::MinMax;
  const io::Image fig = render(o, info, l, R, fixed_queries, ro);
  io::write_png(o.out, fig);
  const int64_t rows = l.images.size(0);
  fmt::print("sagan-attention: wrote {} ({}x{} pixels: {} row(s) of the image and {} map(s))\n", o.out, fig.width,
             fig.height, rows,
             rows == 0 ? 0 : (fig.width - ro.padding) / (R * viz::panel_scale(R, ro) + ro.padding) - 1);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sagan-attention: render self-attention maps of a sagan-train checkpoint (or run directory)."};
  AttentionOptions o;
  add_options(app, o);
  return cli::parse_and_run("sagan-attention", app, argc, argv, [&] { return run(o); });
}
