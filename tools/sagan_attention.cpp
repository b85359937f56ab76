// sagan-attention: the paper's attention-map figure from a checkpoint. For
// generated images (EMA G by default, classes/seed/truncation as
// sagan-sample) or real images (--image, D only), and query points given
// (--queries) or spread automatically (--auto), one PNG row per image: the
// image with the queries marked, then each query's attention map (its row
// of the layer's (N, S) softmax) over the image. See docs/attention.md.
#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/io/image.h"
#include "core/ops.h"
#include "models/attention_maps.h"
#include "models/checkpoint_file.h"
#include "models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  return cli::guarded_main("sagan-attention", [&]() -> int {
    CLI::App app{"sagan-attention: render self-attention maps of a sagan-train checkpoint (or run directory)."};
    std::string ckpt, out = "attention.png", weights = "ema", device = "auto", classes_str, queries_str, net,
                      heat = "minmax";
    std::vector<std::string> image_files;
    int64_t n = 4, layer = 0, auto_n = 0, scale = 0;
    uint64_t seed = 0;
    double truncation = 0.0, alpha = 0.6;
    app.add_option("checkpoint", ckpt, "A checkpoint .safetensors file, or a run directory (its newest checkpoint)")
        ->required();
    app.add_option("--net", net, "G (generator; default) or D (discriminator; the default with --image)")
        ->check(CLI::IsMember({"G", "D", "g", "d"}));
    app.add_option("--layer", layer, "Attention layer index within the network, in forward order")
        ->capture_default_str();
    auto* q_opt = app.add_option("--queries", queries_str, "Query points \"x,y;x,y\" in image pixels (x = column)");
    auto* a_opt = app.add_option("--auto", auto_n, "Spread N query points over each image (default 4)");
    q_opt->excludes(a_opt);
    app.add_option("-n,--num", n, "Generated images (one figure row each)")->capture_default_str();
    app.add_option("--classes", classes_str,
                   "Comma-separated class ids, cycled over the images (default: all classes in turn)");
    app.add_option("--truncation", truncation, "Resample z components with |z| above this (0 = off)")
        ->capture_default_str();
    app.add_option("--seed", seed, "Seed for z (the same images as sagan-sample --seed)")->capture_default_str();
    app.add_option("--weights", weights, "Rng weights: ema (default) or g")->check(CLI::IsMember({"ema", "g"}));
    app.add_option("--image", image_files,
                   "Real image file(s) (PNG/JPEG) to run D's attention on, instead of G's samples");
    app.add_option("-o,--out", out, "PNG to write")->capture_default_str();
    app.add_option("--scale", scale, "Panel pixels per image pixel (0: the smallest giving panels >= 128 px)")
        ->capture_default_str();
    app.add_option("--alpha", alpha, "Heat-map opacity over the image, in [0, 1]")->capture_default_str();
    app.add_option("--heat-scale", heat, "minmax (each map stretched to its range) or max (weights / peak)")
        ->check(CLI::IsMember({"minmax", "max"}))
        ->capture_default_str();
    app.add_option("--device", device, "auto | cpu | cuda | cuda:N")->capture_default_str();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    const bool real = !image_files.empty();
    if (net.empty()) net = real ? "D" : "G";
    const bool use_d = net == "D" || net == "d";
    SAGAN_CHECK(!(real && !use_d),
                "--image: real images go through the discriminator; use --net D (G has no image input)");
    SAGAN_CHECK(n > 0, "--num must be positive, got {}", n);
    SAGAN_CHECK(!(real && app.count("--num") > 0), "--num: not used with --image (one row per image file)");
    SAGAN_CHECK(layer >= 0, "--layer must be >= 0, got {}", layer);
    SAGAN_CHECK(truncation >= 0, "--truncation must be >= 0 (0 = off), got {}", truncation);
    SAGAN_CHECK(scale >= 0 && scale <= 64, "--scale must be in [0, 64] (0 = automatic), got {}", scale);
    SAGAN_CHECK(alpha >= 0 && alpha <= 1, "--alpha must be in [0, 1], got {}", alpha);
    if (app.count("--auto") > 0) SAGAN_CHECK(auto_n > 0, "--auto must be positive, got {}", auto_n);
    if (queries_str.empty() && auto_n == 0) auto_n = 4;

    const CheckpointFile ck = open_checkpoint(ckpt);
    const TrainConfig& cfg = ck.config;
    const int64_t K = cfg.model.num_classes, R = cfg.model.resolution, C = cfg.model.image_channels;
    std::vector<int64_t> classes = cli::parse_class_ids(classes_str, K, ck.path);
    // Queries given explicitly are checked now, before any forward.
    std::vector<viz::QueryPoint> fixed_queries;
    if (!queries_str.empty()) fixed_queries = viz::parse_queries(queries_str, R);

    Device dev = resolve_device(device);
    Rng init(0);
    std::unique_ptr<SaganGenerator> g;
    std::unique_ptr<SaganDiscriminator> d;
    std::vector<viz::AttentionLayerInfo> infos;
    if (use_d) {
      d = std::make_unique<SaganDiscriminator>(cfg.model, init);
      infos = viz::attention_layer_infos(*d);
    } else {
      g = std::make_unique<SaganGenerator>(cfg.model, init);
      infos = viz::attention_layer_infos(*g);
    }
    const char* net_name = use_d ? "D" : "G";
    SAGAN_CHECK(!infos.empty(), "--net {}: the model in {} has no attention layer in {}", net_name, ckpt, net_name);
    if (layer >= static_cast<int64_t>(infos.size())) {
      std::string list;
      for (auto& i : infos) list += fmt::format("\n  {}: {} at {}x{}", i.index, i.name, i.resolution, i.resolution);
      SAGAN_FAIL("--layer {} is out of range: {} has {} attention layer(s):{}", layer, net_name, infos.size(), list);
    }
    const viz::AttentionLayerInfo& info = infos[static_cast<size_t>(layer)];

    // The images to look at: decoded files, or G's samples (drawn exactly as
    // sagan-sample draws them).
    Tensor images, labels;
    int64_t B = real ? static_cast<int64_t>(image_files.size()) : n;
    std::vector<int64_t> y(static_cast<size_t>(B), 0);
    for (int64_t i = 0; i < B && !classes.empty(); ++i)
      y[static_cast<size_t>(i)] = classes[static_cast<size_t>(i) % classes.size()];
    if (K > 0) labels = Tensor::from_vector(y, {B}, dev);
    viz::AttentionCapture cap;
    if (real) {
      std::vector<Tensor> xs;
      for (auto& file : image_files) xs.push_back(viz::image_tensor(io::read_image(file), C, R));
      images = concat(xs, 0).to(dev);
    } else {
      SaganGenerator* gen = g.get();
      std::unique_ptr<SaganGenerator> g_for_d;
      if (use_d) {
        g_for_d = std::make_unique<SaganGenerator>(cfg.model, init);
        gen = g_for_d.get();
      }
      load_generator(*gen, ck, weights);
      gen->to(dev);
      gen->eval();
      Tensor zt = cli::sample_latents(n, cfg.model.z_dim, seed, truncation, dev);
      if (use_d) {
        NoGradGuard ng;
        images = gen->forward(zt, labels);
      } else {
        cap = viz::capture_attention(*gen, layer, zt, labels, &images);
      }
    }
    if (use_d) {
      load_discriminator(*d, ck);
      d->to(dev);
      d->eval();
      cap = viz::capture_attention(*d, layer, images, labels);
    }

    fmt::print("sagan-attention: {} layer {} '{}' at {}x{}: N = {} queries, S = {} keys ({}x{} {}) from {} (step {})\n",
               net_name, info.index, info.name, info.resolution, info.resolution, info.n(), info.s(), info.key_side,
               info.key_side, info.pooled ? "max-pooled grid" : "grid, unpooled", ck.path, ck.step);
    viz::RenderOptions ro;
    ro.scale = scale;
    ro.alpha = alpha;
    ro.heat_scale = heat == "max" ? viz::HeatScale::Max : viz::HeatScale::MinMax;
    std::vector<io::Image> rows;
    for (int64_t b = 0; b < B; ++b) {
      io::Image img = viz::tensor_image(images, b);
      std::vector<viz::QueryPoint> qs = fixed_queries.empty() ? viz::auto_queries(img, auto_n) : fixed_queries;
      std::vector<std::vector<double>> maps;
      std::string source = real ? image_files[static_cast<size_t>(b)] : fmt::format("sample {}", b);
      fmt::print("  {}{}:", source, K > 0 ? fmt::format(" (class {})", y[static_cast<size_t>(b)]) : "");
      for (auto& q : qs) {
        int64_t qi = viz::query_index(q, R, info.resolution);
        maps.push_back(cap.row(b, qi));
        double peak = *std::max_element(maps.back().begin(), maps.back().end());
        // peak * S: how many times the uniform weight 1/S the strongest key gets.
        fmt::print(" ({},{})->{} peak {:.1f}x", q.x, q.y, qi, peak * static_cast<double>(info.s()));
      }
      fmt::print("\n");
      rows.push_back(viz::render_attention_row(img, qs, maps, info.key_side, ro));
    }
    io::Image fig = viz::stack_rows(rows, ro.padding, ro.background);
    if (fs::path p(out); p.has_parent_path()) fs::create_directories(p.parent_path());
    io::write_png(out, fig);
    fmt::print("sagan-attention: wrote {} ({}x{} pixels: {} row(s) of the image and {} map(s))\n", out, fig.width,
               fig.height, B,
               rows.empty() ? 0 : (fig.width - ro.padding) / (R * viz::panel_scale(R, ro) + ro.padding) - 1);
    return 0;
  });
}
