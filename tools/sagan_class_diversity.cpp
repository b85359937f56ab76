// sagan-class-diversity: how varied a conditional generator's samples are
// within each class. For every class, n samples generated with that label
// against n real training images of that class, in the Fashion-MNIST
// classifier's features: precision / recall within the class, the feature
// spread (mean squared distance to the class mean) of fake and real, and how
// often the classifier gives the label (models/quality/class_diversity.h).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sagan/core/hash.h"
#include "sagan/core/io/atomic_file.h"
#include "sagan/core/ops.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"
#include "sagan/models/quality/class_diversity.h"
#include "sagan/models/quality/evaluate.h"
#include "sagan/models/quality/fmnist_classifier.h"
#include "sagan/models/trainer.h"
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

constexpr int64_t kMaxPerClass = 1'000'000;

struct ClassDiversityOptions {
  std::string checkpoint;  // a .safetensors file or a run directory
  std::string weights = "ema", bn = "eval", device = "auto", fmnist_weights, json_out;
  int64_t n = 1000, k = 3;
  uint64_t seed = 0;
  bool quiet = false;

  void check() const {
    SAGAN_CHECK(k > 0, "--k must be positive, got {}", k);
    SAGAN_CHECK(n > k, "--num ({}) must be larger than --k ({})", n, k);
    // Beyond any data set's class, and what the nearest-neighbour search and
    // the features (10 classes x 2 sets) could hold.
    SAGAN_CHECK(n <= kMaxPerClass, "--num {}: at most {} per class", n, kMaxPerClass);
    SAGAN_CHECK(fmnist_weights.empty() || std::filesystem::is_regular_file(fmnist_weights),
                "--fmnist-weights {} does not exist or is not a file", fmnist_weights);
    if (!json_out.empty()) io::check_writable_file(json_out, "--json " + json_out);  // now, not after the work
    cli::check_output_not_input(
        json_out, "--json " + json_out,
        {{"the checkpoint", checkpoint},
         {"the feature weights", fmnist_weights.empty() ? default_fmnist_weights() : fmnist_weights}});
  }
};

void add_options(CLI::App& app, ClassDiversityOptions& o) {
  app.add_option("checkpoint", o.checkpoint,
                 "A checkpoint .safetensors file, or a run directory (its newest checkpoint)")
      ->required();
  app.add_option("-n,--num", o.n, "Generated and real images per class")->capture_default_str();
  app.add_option("--weights", o.weights,
                 "ema (default), g (the raw generator), or ema-g-buffers: EMA weights with G's batch-norm "
                 "statistics and SN vectors (what G_ema held before the trainer averaged buffers too)")
      ->check(CLI::IsMember({"ema", "g", "ema-g-buffers"}));
  app.add_option("--bn", o.bn,
                 "eval: batch norm with the running statistics (as sagan-sample); train: with each batch's "
                 "statistics (batches mix all classes, as in training; spectral norm then takes a power-iteration "
                 "step per batch too, as in training)")
      ->check(CLI::IsMember({"eval", "train"}))
      ->capture_default_str();
  app.add_option("--k", o.k, "Neighbours for the precision / recall manifolds")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for z and for the choice of real images")->capture_default_str();
  app.add_option("--fmnist-weights", o.fmnist_weights, "Classifier weights (default: the committed file)");
  app.add_option("--json", o.json_out, "Also write the figures as JSON");
  app.add_option("--device", o.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  app.add_flag("--quiet", o.quiet, "No progress display");
}

struct Embedded {
  FeatureMatrix features, logits;
};

void embed_into(FeatureNet& net, const Tensor& images, Embedded& out) {
  FeatureNet::Output o = net.embed(images);
  out.features.append(o.features);
  out.logits.append(o.logits);
}

// The generator the options name, on `dev`, in the batch-norm mode asked for.
std::unique_ptr<SaganGenerator> load_generator_for(const ClassDiversityOptions& o, const CheckpointFile& c,
                                                   Device dev) {
  Rng init(0);
  auto g = std::make_unique<SaganGenerator>(c.config.model, init);
  load_generator(*g, c, o.weights == "g" ? "g" : "ema");
  if (o.weights == "ema-g-buffers") {
    SaganGenerator raw(c.config.model, init);
    load_generator(raw, c, "g");
    NoGradGuard ng;
    for (auto& [name, b] : raw.named_buffers()) g->tensor(name).copy_(b);
  }
  g->to(dev);
  g->train(o.bn == "train");
  return g;
}

// The seed of batch b's latents: b + (splitmix64(seed) - splitmix64(0)).
// Seed 0 keeps the latents it always drew (batch b from seed b: the figures
// in docs/training.md), and any other seed's batches land far from seed
// 0's. The plain seed + b made seed 1's batch 0 seed 0's batch 1: repeats
// over adjacent seeds shared latents.
uint64_t batch_seed(uint64_t seed, int64_t b) { return static_cast<uint64_t>(b) + (splitmix64(seed) - splitmix64(0)); }

// n fakes per class in batches of 10 per class, labels cycling, split by label.
std::vector<Embedded> embed_fakes(const ClassDiversityOptions& o, SaganGenerator& g, FeatureNet& net, int64_t K,
                                  int64_t z_dim, Device dev) {
  std::vector<Embedded> fake(static_cast<size_t>(K));
  const int64_t per_batch = 10, B = per_batch * K;
  std::vector<int64_t> y(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) y[static_cast<size_t>(i)] = i % K;
  cli::ProgressLine progress("embedding generated", !o.quiet);
  for (int64_t b = 0; b * per_batch < o.n; ++b) {
    progress(b * per_batch * K, o.n * K);
    NoGradGuard ng;
    Tensor imgs =
        g.forward(cli::sample_latents(B, z_dim, batch_seed(o.seed, b), 0.0, dev), Tensor::from_vector(y, {B}, dev));
    const int64_t take = std::min(per_batch, o.n - b * per_batch);
    for (int64_t label = 0; label < K; ++label) {
      std::vector<int64_t> rows;
      for (int64_t j = 0; j < take; ++j) rows.push_back(j * K + label);
      embed_into(net, index_select(imgs, 0, Tensor::from_vector(rows, {take}, dev)), fake[static_cast<size_t>(label)]);
    }
  }
  progress(o.n * K, o.n * K);
  return fake;
}

// n reals per class from the training split, prepared as the loader does.
std::vector<Embedded> embed_reals(const ClassDiversityOptions& o, const CheckpointFile& c, FeatureNet& net,
                                  Device dev) {
  const TrainConfig& cfg = c.config;
  const int64_t K = cfg.model.num_classes;
  auto ds = open_dataset(cfg.dataset, cfg.data_path, "train");
  SAGAN_CHECK(ds->num_classes() == K, "{}: {} classes in the model but {} in {}", c.path, K, ds->num_classes(),
              ds->name());
  std::vector<Embedded> real(static_cast<size_t>(K));
  cli::ProgressLine progress("embedding real", !o.quiet);
  for (int64_t label = 0; label < K; ++label) {
    progress(label * o.n, K * o.n);
    // The run's --resize: real images take the geometry they were trained on.
    auto src = dataset_source(std::make_shared<ClassSubset>(ds, label), cfg.model.resolution, cfg.model.image_channels,
                              o.n, o.seed, io::parse_upscale(cfg.resize, "resize"));
    for (Tensor imgs = src->next(200); imgs.defined(); imgs = src->next(200))
      embed_into(net, imgs.to(dev), real[static_cast<size_t>(label)]);
    const int64_t got = real[static_cast<size_t>(label)].features.rows;
    // Before any row is printed: a table cut short by an error misleads.
    SAGAN_CHECK(got > o.k,
                "{}: class {} has {} real image(s) in {}; precision and recall with --k {} need more than {}", c.path,
                label, got, ds->name(), o.k, o.k);
    if (got < o.n)
      fmt::print(stderr,
                 "sagan-class-diversity: warning: class {} has {} real images, fewer than --num {}; using all\n", label,
                 got, o.n);
  }
  progress(K * o.n, K * o.n);
  return real;
}

// Prints the table (one row per class and the mean) and returns it as JSON.
nlohmann::json report(const ClassDiversityOptions& o, const CheckpointFile& c, const std::vector<Embedded>& real,
                      const std::vector<Embedded>& fake) {
  const int64_t K = static_cast<int64_t>(real.size());
  fmt::print("{} ({} weights, step {}, batch norm in {} mode), {} per class, k = {}\n", c.path, o.weights, c.step, o.bn,
             o.n, o.k);
  fmt::print("{:>5} {:>9} {:>9} {:>12} {:>12} {:>8} {:>8} {:>8}\n", "class", "recall", "precision", "spread_fake",
             "spread_real", "ratio", "acc_fake", "acc_real");
  nlohmann::json j = {
      {"checkpoint", c.path}, {"step", c.step}, {"weights", o.weights}, {"bn", o.bn},
      {"per_class", o.n},     {"k", o.k},       {"seed", o.seed},       {"classes", nlohmann::json::array()}};
  double sums[5] = {0, 0, 0, 0, 0};
  for (int64_t label = 0; label < K; ++label) {
    const Embedded &r = real[static_cast<size_t>(label)], &f = fake[static_cast<size_t>(label)];
    ClassDiversity d = class_diversity(label, r.features, r.logits, f.features, f.logits, o.k);
    double ratio = d.spread_fake / d.spread_real;
    fmt::print("{:>5} {:>9.3f} {:>9.3f} {:>12.2f} {:>12.2f} {:>8.3f} {:>8.3f} {:>8.3f}\n", label, d.recall, d.precision,
               d.spread_fake, d.spread_real, ratio, d.accuracy_fake, d.accuracy_real);
    for (int i = 0; double v : {d.recall, d.precision, ratio, d.accuracy_fake, d.accuracy_real}) sums[i++] += v;
    j["classes"].push_back({{"label", label},
                            {"real_images", r.features.rows},
                            {"fake_images", f.features.rows},
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
  return j;
}

int run(const ClassDiversityOptions& o) {
  o.check();
  const CheckpointFile c = open_checkpoint(o.checkpoint);
  const int64_t K = c.config.model.num_classes;
  SAGAN_CHECK(K > 0, "{}: the model is unconditional; per-class figures need a conditional one", c.path);
  // The classifier's features and labels are Fashion-MNIST's: on other data
  // every figure would be computed, and mean nothing.
  SAGAN_CHECK(c.config.model.image_channels == 1 && K == 10,
              "{}: a generator of {}-channel images in {} classes ({}); sagan-class-diversity measures with the "
              "Fashion-MNIST classifier, which fits Fashion-MNIST runs only (1 channel, 10 classes)",
              c.path, c.config.model.image_channels, K, c.config.dataset);
  SAGAN_CHECK(c.config.dataset != "custom",
              "{}: the run trained on a program's own data set (dataset \"custom\"), whose real images "
              "sagan-class-diversity cannot read (it reads those of fashion-mnist, cifar10 and folder runs)",
              c.path);
  // A folder of 10 gray classes passes the checks above; its figures mean
  // something only if its classes are Fashion-MNIST's, in its order.
  if (c.config.dataset != "fashion-mnist")
    fmt::print(stderr,
               "sagan-class-diversity: warning: {}: the run trained on {} data ({}); the figures are in the "
               "Fashion-MNIST classifier's features and labels, meaningful only if its classes 0-9 are "
               "Fashion-MNIST's (T-shirt/top ... ankle boot) in that order\n",
               c.path, c.config.dataset, c.config.data_path.empty() ? "its default path" : c.config.data_path);
  const Device dev = resolve_device(o.device);
  FmnistFeatureNet net(o.fmnist_weights.empty() ? default_fmnist_weights() : o.fmnist_weights, dev);
  std::unique_ptr<SaganGenerator> g = load_generator_for(o, c, dev);
  // The real images first: a class with too few, or fewer than asked for,
  // is said before the generator's work, not after it.
  const std::vector<Embedded> real = embed_reals(o, c, net, dev);
  const std::vector<Embedded> fake = embed_fakes(o, *g, net, K, c.config.model.z_dim, dev);
  const nlohmann::json j = report(o, c, real, fake);
  if (!o.json_out.empty()) io::write_file_atomic(o.json_out, j.dump(1) + "\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sagan-class-diversity: per-class precision, recall, feature spread and label accuracy of a conditional "
      "Fashion-MNIST generator's samples against the real images of each class."};
  ClassDiversityOptions o;
  add_options(app, o);
  return cli::parse_and_run("sagan-class-diversity", app, argc, argv, [&] { return run(o); });
}
