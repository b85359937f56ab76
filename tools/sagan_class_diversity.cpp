// sagan-class-diversity: how varied a conditional generator's samples are
// within each class. For every class, n samples generated with that label
// against n real training images of that class, in the Fashion-MNIST
// classifier's features: precision / recall within the class, the feature
// spread (mean squared distance to the class mean) of fake and real, and how
// often the classifier gives the label (models/quality/class_diversity.h).
#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/atomic_file.h"
#include "core/ops.h"
#include "models/checkpoint_file.h"
#include "models/generator.h"
#include "models/quality/class_diversity.h"
#include "models/quality/evaluate.h"
#include "models/quality/fmnist_classifier.h"
#include "models/trainer.h"
#include "tools/cli_common.h"

using namespace sagan;
using namespace sagan::quality;

namespace {

// The images of one class of a data set, in the data set's order.
class ClassSubset : public data::Dataset {
 public:
  ClassSubset(std::shared_ptr<const data::Dataset> base, int64_t label) : base_(std::move(base)), label_(label) {
    for (int64_t i = 0; i < base_->size(); ++i)
      if (base_->get(i).label == label) index_.push_back(i);
    SAGAN_CHECK(!index_.empty(), "{}: no image of class {}", base_->name(), label);
  }
  std::string name() const override { return fmt::format("{} class {}", base_->name(), label_); }
  int64_t size() const override { return static_cast<int64_t>(index_.size()); }
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  int64_t height() const override { return base_->height(); }
  int64_t width() const override { return base_->width(); }
  data::Example get(int64_t i) const override {
    check_index(i);
    return base_->get(index_[static_cast<size_t>(i)]);
  }

 private:
  std::shared_ptr<const data::Dataset> base_;
  int64_t label_;
  std::vector<int64_t> index_;
};

struct Embedded {
  FeatureMatrix features, logits;
};

void embed_into(FeatureNet& net, const Tensor& images, Embedded& out) {
  FeatureNet::Output o = net.embed(images);
  out.features.append(o.features);
  out.logits.append(o.logits);
}

}  // namespace

int main(int argc, char** argv) {
  return cli::guarded_main("sagan-class-diversity", [&]() -> int {
    CLI::App app{
        "sagan-class-diversity: per-class precision, recall, feature spread and label accuracy of a conditional "
        "Fashion-MNIST generator's samples against the real images of each class."};
    std::string ckpt, weights = "ema", bn = "eval", device = "auto", fmnist_weights, json_out;
    int64_t n = 1000, k = 3;
    uint64_t seed = 0;
    app.add_option("checkpoint", ckpt, "A checkpoint .safetensors file, or a run directory (its newest checkpoint)")
        ->required();
    app.add_option("-n,--num", n, "Generated and real images per class")->capture_default_str();
    app.add_option("--weights", weights,
                   "ema (default), g (the raw generator), or ema-g-buffers: EMA weights with G's batch-norm "
                   "statistics and SN vectors (what G_ema held before the trainer averaged buffers too)")
        ->check(CLI::IsMember({"ema", "g", "ema-g-buffers"}));
    app.add_option("--bn", bn,
                   "eval: batch norm with the running statistics (as sagan-sample); train: with each batch's "
                   "statistics (batches mix all classes, as in training)")
        ->check(CLI::IsMember({"eval", "train"}))
        ->capture_default_str();
    app.add_option("--k", k, "Neighbours for the precision / recall manifolds")->capture_default_str();
    app.add_option("--seed", seed, "Seed for z and for the choice of real images")->capture_default_str();
    app.add_option("--fmnist-weights", fmnist_weights, "Classifier weights (default: the committed file)");
    app.add_option("--json", json_out, "Also write the figures as JSON");
    app.add_option("--device", device, "auto | cpu | cuda | cuda:N")->capture_default_str();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    SAGAN_CHECK(n > k, "--num ({}) must be larger than --k ({})", n, k);
    const CheckpointFile c = open_checkpoint(ckpt);
    const TrainConfig& cfg = c.config;
    const int64_t K = cfg.model.num_classes;
    SAGAN_CHECK(K > 0, "{}: the model is unconditional; per-class figures need a conditional one", c.path);

    Device dev = resolve_device(device);
    FmnistFeatureNet net(fmnist_weights.empty() ? default_fmnist_weights() : fmnist_weights, dev);
    Rng init(0);
    SaganGenerator g(cfg.model, init);
    load_generator(g, c, weights);
    if (weights == "ema-g-buffers") {
      SaganGenerator raw(cfg.model, init);
      load_generator(raw, c, "g");
      NoGradGuard ng;
      for (auto& [name, b] : raw.named_buffers()) g.tensor(name).copy_(b);
    }
    g.to(dev);
    g.train(bn == "train");

    // Fakes: batches of 10 per class, labels cycling, split by label.
    std::vector<Embedded> fake(static_cast<size_t>(K)), real(static_cast<size_t>(K));
    const int64_t per_batch = 10, B = per_batch * K;
    std::vector<int64_t> y(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i) y[static_cast<size_t>(i)] = i % K;
    for (int64_t b = 0; b * per_batch < n; ++b) {
      NoGradGuard ng;
      Tensor imgs = g.forward(cli::sample_latents(B, cfg.model.z_dim, seed + static_cast<uint64_t>(b), 0.0, dev),
                              Tensor::from_vector(y, {B}, dev));
      const int64_t take = std::min(per_batch, n - b * per_batch);
      for (int64_t label = 0; label < K; ++label) {
        std::vector<int64_t> rows;
        for (int64_t j = 0; j < take; ++j) rows.push_back(j * K + label);
        embed_into(net, index_select(imgs, 0, Tensor::from_vector(rows, {take}, dev)),
                   fake[static_cast<size_t>(label)]);
      }
    }
    // Reals: n of each class from the training split, prepared as the loader does.
    auto ds = open_dataset(cfg.dataset, cfg.data_path, "train");
    SAGAN_CHECK(ds->num_classes() == K, "{}: {} classes in the model but {} in {}", c.path, K, ds->num_classes(),
                ds->name());
    for (int64_t label = 0; label < K; ++label) {
      auto src = dataset_source(std::make_shared<ClassSubset>(ds, label), cfg.model.resolution,
                                cfg.model.image_channels, n, seed);
      for (Tensor imgs = src->next(200); imgs.defined(); imgs = src->next(200))
        embed_into(net, imgs.to(dev), real[static_cast<size_t>(label)]);
    }

    fmt::print("{} ({} weights, step {}, batch norm in {} mode), {} per class, k = {}\n", c.path, weights, c.step, bn,
               n, k);
    fmt::print("{:>5} {:>9} {:>9} {:>12} {:>12} {:>8} {:>8} {:>8}\n", "class", "recall", "precision", "spread_fake",
               "spread_real", "ratio", "acc_fake", "acc_real");
    nlohmann::json j = {
        {"checkpoint", c.path}, {"step", c.step}, {"weights", weights}, {"bn", bn},
        {"per_class", n},       {"k", k},         {"seed", seed},       {"classes", nlohmann::json::array()}};
    double sums[5] = {0, 0, 0, 0, 0};
    for (int64_t label = 0; label < K; ++label) {
      const Embedded &r = real[static_cast<size_t>(label)], &f = fake[static_cast<size_t>(label)];
      ClassDiversity d = class_diversity(label, r.features, r.logits, f.features, f.logits, k);
      double ratio = d.spread_fake / d.spread_real;
      fmt::print("{:>5} {:>9.3f} {:>9.3f} {:>12.2f} {:>12.2f} {:>8.3f} {:>8.3f} {:>8.3f}\n", label, d.recall,
                 d.precision, d.spread_fake, d.spread_real, ratio, d.accuracy_fake, d.accuracy_real);
      for (int i = 0; double v : {d.recall, d.precision, ratio, d.accuracy_fake, d.accuracy_real}) sums[i++] += v;
      j["classes"].push_back({{"label", label},
                              {"recall", d.recall},
                              {"precision", d.precision},
                              {"spread_fake", d.spread_fake},
                              {"spread_real", d.spread_real},
                              {"accuracy_fake", d.accuracy_fake},
                              {"accuracy_real", d.accuracy_real}});
    }
    for (double& s : sums) s /= static_cast<double>(K);
    fmt::print("{:>5} {:>9.3f} {:>9.3f} {:>12} {:>12} {:>8.3f} {:>8.3f} {:>8.3f}\n", "mean", sums[0], sums[1], "", "",
               sums[2], sums[3], sums[4]);
    j["mean"] = {{"recall", sums[0]},
                 {"precision", sums[1]},
                 {"spread_ratio", sums[2]},
                 {"accuracy_fake", sums[3]},
                 {"accuracy_real", sums[4]}};
    if (!json_out.empty()) io::write_file_atomic(json_out, j.dump(1) + "\n");
    return 0;
  });
}
