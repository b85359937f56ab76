// The Fashion-MNIST feature network and the evaluation pipeline
// (models/quality/fmnist_classifier.h, models/quality/evaluate.h): cross-entropy
// values and gradients, a training step that learns, the committed weights'
// accuracy, folder / data-set sources, caching and reports.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "sagan/core/io/image.h"
#include "sagan/core/ops.h"
#include "sagan/core/warning.h"
#include "sagan/layers/adam.h"
#include "sagan/models/quality/evaluate.h"
#include "sagan/models/quality/fd_monitor.h"
#include "sagan/models/quality/fmnist_classifier.h"
#include "tests/support/gradcheck.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::TempDir;
using namespace sagan::quality;
using namespace sagan::testing;
namespace fs = std::filesystem;

namespace {

bool fmnist_installed() { return fs::exists(std::string(data::kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz"); }
}  // namespace

TEST_CASE("cross_entropy: hand-computed value and float64 gradient", "[eval_pipeline]") {
  Tensor logits = Tensor::from_vector(std::vector<double>{1, 2, 3, 0, 0, 1000}, {2, 3}, DType::F64);
  Tensor y = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
  // Row 1: -log softmax = log(e + e^2 + e^3) - 3; row 2: 1000 - 0 (stable, no overflow).
  const double expect = ((std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0) + 1000.0) / 2;
  CHECK(cross_entropy(logits, y).item() == Approx(expect).epsilon(1e-12));
  Rng gen(1);
  Tensor l = randn64({5, 7}, gen);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 6, 3, 3, 1}, {5});
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels); }, {l});
  INFO(r.message);
  CHECK(r.ok);
  REQUIRE_THROWS_WITH(cross_entropy(l, Tensor::from_vector(std::vector<int64_t>{0, 7, 0, 0, 0}, {5})),
                      Catch::Contains("cross_entropy: label 7 of example 1 is not in [0, 7)"));
  REQUIRE_THROWS_WITH(cross_entropy(l, labels.slice(0, 0, 3)),
                      Catch::Contains("cross_entropy: labels must be (B) = (5)"));
}

TEST_CASE("FmnistClassifier: shapes, a few Adam steps fit a batch, errors", "[eval_pipeline][long]") {
  Rng gen(2);
  FmnistClassifier model(gen);
  CHECK(model.num_parameters() < 500000);  // the weights file stays under 2 MB
  Tensor x = Tensor::rand({8, 1, 28, 28}, gen) * 2.0 - 1.0;
  Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8});
  nn::Adam opt(model.named_parameters(), {3e-3, 0.9, 0.999, 1e-8});
  double first = 0, last = 0;
  for (int i = 0; i < 12; ++i) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model.forward(x, 0.2, &gen).logits, y);
    loss.backward();
    opt.step();
    (i == 0 ? first : last) = loss.item();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
  model.eval();
  FmnistClassifier::Output o = model.forward(x);
  CHECK(o.features.shape() == Shape{8, 128});
  CHECK(o.logits.shape() == Shape{8, 10});
  REQUIRE_THROWS_WITH(model.forward(Tensor::zeros({2, 1, 32, 32})),
                      Catch::Contains("FmnistClassifier: input must be (B, 1, 28, 28)"));
}

TEST_CASE("the committed Fashion-MNIST classifier is accurate and treats gray and RGB alike", "[eval_pipeline][long]") {
  if (!fmnist_installed()) {
    WARN("dataset-fashion-mnist not installed; skipped");
    return;
  }
  FmnistFeatureNet net(default_fmnist_weights());
  auto test = data::fashion_mnist("test");
  auto src = dataset_source(test, 0, 1, 1000, 0);
  Tensor imgs = src->next(1000);
  FeatureNet::Output o = net.embed(imgs);
  std::vector<double> logits = o.logits.to_vector();
  // Labels of the same seeded subset: a second source over the same permutation.
  int64_t correct = 0;
  std::vector<int64_t> order(static_cast<size_t>(test->size()));
  std::iota(order.begin(), order.end(), 0);
  Rng gen(0);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.below(i)]);
  for (int64_t i = 0; i < 1000; ++i) {
    const double* row = logits.data() + i * 10;
    if (std::max_element(row, row + 10) - row == test->get(order[static_cast<size_t>(i)]).label) ++correct;
  }
  INFO("accuracy on 1000 test images: " << correct / 10.0 << "%");
  CHECK(correct >= 900);
  // Gray repeated to RGB gives the same features (luma weights sum to 1),
  // and a 32x32 version goes through the resize.
  Tensor few = imgs.slice(0, 0, 4);
  auto close = allclose(net.embed(few.expand({4, 3, 28, 28})).features, net.embed(few).features, 1e-5, 1e-5);
  INFO(close.message);
  CHECK(close.ok);
  CHECK(net.embed(Tensor::zeros({2, 3, 32, 32})).features.shape() == Shape{2, 128});
  REQUIRE_THROWS_WITH(FmnistFeatureNet("/nonexistent/w.safetensors"),
                      Catch::Contains("/nonexistent/w.safetensors does not exist"));
}

TEST_CASE("a missing feature-net weights file is named with the option or variable that gave it", "[eval_pipeline]") {
  // sagan-train's FD passes --fd-weights: its message named sagan-eval's
  // --fmnist-weights, an option sagan-train does not have.
  for (const char* features : {"fmnist", "inception"}) {
    INFO(features);
    try {
      load_feature_net(features, "/nonexistent/w.safetensors", {}, "--fd-weights");
      FAIL("no error");
    } catch (const Error& e) {
      const std::string m = e.what();
      CHECK_THAT(m, Catch::Contains("--fd-weights /nonexistent/w.safetensors: no such file"));
      CHECK_THAT(m, !Catch::Contains("--fmnist-weights"));
    }
  }
  // The default path taken from $SAGAN_FMNIST_WEIGHTS: the message says so.
  const char* before = std::getenv("SAGAN_FMNIST_WEIGHTS");
  const std::string saved = before ? before : "";
  ::setenv("SAGAN_FMNIST_WEIGHTS", "/nonexistent/env.safetensors", 1);
  std::string message;
  try {
    load_feature_net("fmnist", "", {}, "--fd-weights");
  } catch (const Error& e) {
    message = e.what();
  }
  if (before)
    ::setenv("SAGAN_FMNIST_WEIGHTS", saved.c_str(), 1);
  else
    ::unsetenv("SAGAN_FMNIST_WEIGHTS");
  CHECK_THAT(message, Catch::Contains("/nonexistent/env.safetensors (from the environment variable "
                                      "SAGAN_FMNIST_WEIGHTS) does not exist"));
  CHECK_THAT(message, !Catch::Contains("--fmnist-weights") && !Catch::Contains("--fd-weights"));
}

TEST_CASE("folder source: flat or nested folders, channel conversion, size checks", "[eval_pipeline]") {
  TempDir dir_scope;
  fs::path dir = dir_scope.path;
  fs::create_directories(dir / "sub");
  for (int i = 0; i < 3; ++i) {
    io::Image img(6, 5, 3, static_cast<uint8_t>(50 * i));
    img.at(0, 0, 0) = 255;
    io::write_png((dir / (i == 2 ? "sub/c.png" : (i == 0 ? "a.png" : "b.png"))).string(), img);
  }
  // Before any embedding: the first file's size; RGB files: 3 channels.
  const FolderImages probed = probe_folder(dir.string());
  CHECK((probed.height == 6 && probed.width == 5 && probed.channels == 3));
  auto src = folder_source(dir.string(), 1, 0, 0);
  CHECK(src->size() == 3);
  Tensor t = src->next(10);
  REQUIRE(t.shape() == Shape{3, 1, 6, 5});
  // All three, in a seeded order: pixel (1,1) is each image's fill value
  // (0, 50, 100 for a.png, b.png, sub/c.png).
  std::vector<double> fills;
  for (int i = 0; i < 3; ++i) fills.push_back(std::round((t.to_vector()[static_cast<size_t>(30 * i + 6)] + 1) * 127.5));
  std::vector<double> sorted_fills = fills;
  std::sort(sorted_fills.begin(), sorted_fills.end());
  CHECK(sorted_fills == std::vector<double>{0, 50, 100});
  CHECK_FALSE(src->next(10).defined());
  // The same seed, the same order; the order is of the sorted paths, so it
  // does not depend on how the file system lists them.
  Tensor again = folder_source(dir.string(), 1, 0, 0)->next(10);
  CHECK(again.to_vector() == t.to_vector());
  CHECK(folder_source(dir.string(), 3, 8, 2)->next(5).shape() == Shape{2, 3, 8, 8});
  io::write_png((dir / "d.png").string(), io::Image(7, 7, 1, 0));
  auto mixed = folder_source(dir.string(), 3, 0, 0);
  REQUIRE_THROWS_WITH(mixed->next(10), Catch::Contains("is 7x7 (height x width), expected 6x5") ||
                                           Catch::Contains("is 6x5 (height x width), expected 7x7"));
  TempDir empty_scope;
  fs::path empty = empty_scope.path;
  REQUIRE_THROWS_WITH(folder_source(empty.string(), 3, 0, 0), Catch::Contains("holds no .png/.jpg/.jpeg files"));
  REQUIRE_THROWS_WITH(folder_source((dir / "nope").string(), 3, 0, 0), Catch::Contains("is not a directory"));
  REQUIRE_THROWS_WITH(probe_folder(empty.string()), Catch::Contains("holds no .png/.jpg/.jpeg files"));
}

namespace {
// A feature net for pipeline tests: features = per-channel means and
// spreads, logits = the same; cheap and deterministic.
class TinyFeatureNet : public FeatureNet {
 public:
  std::string name() const override { return "tiny"; }
  int64_t feature_dim() const override { return 2; }
  int64_t num_classes() const override { return 2; }
  Device device() const override { return {}; }
  Output embed(const Tensor& images) override {
    Tensor flat = images.flatten(1);
    Tensor m = mean(flat, {1}, true), s = mean(square(flat), {1}, true);
    Tensor f = concat({m, s}, 1);
    return {f, f};
  }
};
}  // namespace

TEST_CASE("folder source: a subset of a folder sorted by class holds every class (a seeded random order)",
          "[eval_pipeline]") {
  TempDir dir_scope;
  const fs::path dir = dir_scope.path;
  // 4 classes of 25 images, each image filled with its class's value.
  for (int c = 0; c < 4; ++c) {
    fs::create_directories(dir / fmt::format("class{}", c));
    for (int i = 0; i < 25; ++i)
      io::write_png((dir / fmt::format("class{}", c) / fmt::format("{:02}.png", i)).string(),
                    io::Image(4, 4, 1, static_cast<uint8_t>(60 * c)));
  }
  // Gray files only: one channel, so --folder defaults to the fmnist features.
  CHECK(probe_folder(dir.string()).channels == 1);
  for (uint64_t seed : {0, 1}) {
    auto src = folder_source(dir.string(), 1, 0, 20, io::Upscale::bilinear, seed);
    CHECK(src->describe().find(fmt::format("seed-{} order", seed)) != std::string::npos);
    const Tensor t = src->next(20);
    std::set<int> classes;
    for (int i = 0; i < 20; ++i)
      classes.insert(static_cast<int>(std::lround((t.to_vector()[static_cast<size_t>(16 * i)] + 1) * 127.5)) / 60);
    CHECK(classes.size() == 4);  // in path order the first 20 were all class 0
  }
  CHECK(folder_source(dir.string(), 1, 0, 20, io::Upscale::bilinear, 0)->next(20).to_vector() !=
        folder_source(dir.string(), 1, 0, 20, io::Upscale::bilinear, 1)->next(20).to_vector());
}

TEST_CASE("embedding, caching and reports", "[eval_pipeline]") {
  TempDir dir_scope;
  fs::path dir = dir_scope.path;
  fs::create_directories(dir / "imgs");
  for (int i = 0; i < 30; ++i)
    io::write_png((dir / "imgs" / fmt::format("{:02}.png", i)).string(),
                  io::Image(4, 4, 1, static_cast<uint8_t>(7 * i)));
  TinyFeatureNet net;
  int64_t calls = 0;
  auto src = folder_source((dir / "imgs").string(), 1, 0, 0);
  Embedding e = embed(*src, net, 7, [&](int64_t done, int64_t total) {
    ++calls;
    CHECK(total == 30);
    CHECK(done <= total);
  });
  CHECK(calls == 5);
  CHECK(e.features.rows == 30);
  int made = 0;
  auto make = [&] {
    ++made;
    return make_stats(e, net.name(), {{"source", "thirty grays"}});
  };
  bool hit = true;
  const std::string key = cache_key("tiny test/key", "full description");
  CHECK(key.find('/') == std::string::npos);
  StatsFile a = cached_stats((dir / "cache").string(), key, net.name(), make, &hit);
  CHECK_FALSE(hit);
  StatsFile b = cached_stats((dir / "cache").string(), key, net.name(), make, &hit);
  CHECK(hit);
  CHECK(made == 1);
  REQUIRE_THROWS_WITH(cached_stats((dir / "cache").string(), key, "other-net", make),
                      Catch::Contains("holds 'tiny' features, not 'other-net'"));
  // An entry cut short is made again, with a warning naming it, and replaced.
  const fs::path entry = dir / "cache" / (key + ".safetensors");
  fs::resize_file(entry, fs::file_size(entry) / 2);
  std::vector<std::string> warnings;
  StatsFile c = cached_stats((dir / "cache").string(), key, net.name(), make, &hit,
                             [&](const std::string& w) { warnings.push_back(w); });
  CHECK_FALSE(hit);
  CHECK(made == 2);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("--cache: unreadable, made again") && Catch::Contains(entry.string()));
  CHECK(c.stats.n == a.stats.n);
  cached_stats((dir / "cache").string(), key, net.name(), make, &hit);
  CHECK(hit);
  MetricOptions mo;
  mo.kid_subset_size = 10;
  mo.kid_subsets = 5;
  mo.is_splits = 3;
  Report r = compare(a, b, mo);
  REQUIRE(r.fid);
  CHECK(std::abs(r.fid->value) < 1e-8);
  REQUIRE(r.pr);
  CHECK(r.pr->precision == 1.0);
  REQUIRE(r.is);
  REQUIRE(r.kid);
  auto j = nlohmann::json::parse(r.json());
  CHECK(j.at("features") == "tiny");
  CHECK(j.at("fid").at("value").get<double>() == Approx(r.fid->value));
  CHECK(j.at("kid").at("subset_size") == 10);
  CHECK_THAT(r.table(), Catch::Contains("FID") && Catch::Contains("precision"));
  // Statistics-only reference: FID only, with notes for the rest.
  StatsFile lean = b;
  lean.features.reset();
  lean.logits.reset();
  Report rl = compare(a, lean, mo);
  CHECK(rl.fid);
  CHECK_FALSE(rl.kid);
  CHECK_FALSE(rl.pr);
  CHECK_FALSE(rl.is_reference);
  CHECK(rl.notes.size() >= 2);
  // Small samples are flagged.
  CHECK_THAT(rl.notes[0], Catch::Contains("KID: skipped"));
  StatsFile other = b;
  other.feature_net = "inception";
  REQUIRE_THROWS_WITH(compare(a, other, mo), Catch::Contains("'tiny' features but the reference has 'inception'"));
}

TEST_CASE("data-set source: seeded subset, training-loader geometry, errors", "[eval_pipeline]") {
  if (!fmnist_installed()) {
    WARN("dataset-fashion-mnist not installed; skipped");
    return;
  }
  auto ds = open_dataset("fashion-mnist", "", "test");
  auto a = dataset_source(ds, 32, 1, 50, 3), b = dataset_source(ds, 32, 1, 50, 3);
  CHECK(a->size() == 50);
  Tensor ta = a->next(20), tb = b->next(20);
  REQUIRE(ta.shape() == Shape{20, 1, 32, 32});
  CHECK(ta.to_vector() == tb.to_vector());
  auto v = ta.to_vector();
  CHECK(*std::min_element(v.begin(), v.end()) >= -1.0);
  CHECK(*std::max_element(v.begin(), v.end()) <= 1.0);
  CHECK(dataset_source(ds, 0, 3, 0, 0)->size() == 10000);
  REQUIRE_THROWS_WITH(open_dataset("mnist", "", "train"), Catch::Contains("--dataset: 'mnist' is not one of"));
  REQUIRE_THROWS_WITH(open_dataset("fashion-mnist", "", "val"), Catch::Contains("--split: 'val' is not train or test"));
  REQUIRE_THROWS_WITH(open_dataset("cifar10", "", "train"), Catch::Contains("--dataset cifar10 needs --data DIR"));
}

namespace {
// A raw (not gzipped) Fashion-MNIST-style test split in dir: n images of
// 28x28 whose pixels follow `fill`, labels i % 10.
void write_idx_split(const fs::path& dir, uint32_t n, uint8_t fill) {
  auto be32 = [](std::vector<uint8_t>& o, uint32_t v) {
    for (int i = 3; i >= 0; --i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  std::vector<uint8_t> images, labels;
  be32(images, 0x803);
  for (uint32_t d : {n, 28u, 28u}) be32(images, d);
  for (uint32_t i = 0; i < n * 28 * 28; ++i) images.push_back(static_cast<uint8_t>((i * 7 + fill) % 256));
  be32(labels, 0x801);
  be32(labels, n);
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  fs::create_directories(dir);
  write_bytes((dir / "t10k-images-idx3-ubyte").string(), images);
  write_bytes((dir / "t10k-labels-idx1-ubyte").string(), labels);
}
}  // namespace

TEST_CASE("data-set source: the description (cache keys, FD reference) tells directories and rewritten files apart",
          "[eval_pipeline]") {
  // Two directories of the same format, name, split and size (MNIST beside
  // Fashion-MNIST): the same description made --cache hit the other's entry.
  TempDir root;
  write_idx_split(root.path / "a", 20, 0);
  write_idx_split(root.path / "b", 20, 100);
  auto describe = [&](const char* sub) {
    return dataset_source(open_dataset("fashion-mnist", (root.path / sub).string(), "test"), 32, 1, 10, 0)->describe();
  };
  const std::string a = describe("a"), b = describe("b");
  CHECK(a != b);
  CHECK_THAT(a, Catch::Contains(fs::canonical(root.path / "a").string() + ": 2 file(s)"));
  CHECK(describe("a") == a);  // unchanged files: the same key, so the cache still hits
  // Rewritten in place, same size: the modification time changes the key.
  write_idx_split(root.path / "a", 20, 50);
  for (const char* f : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    fs::last_write_time(root.path / "a" / f, fs::last_write_time(root.path / "a" / f) + std::chrono::seconds(2));
  CHECK(describe("a") != a);
}

TEST_CASE("FD monitor: the reference statistics of another directory are not reused", "[eval_pipeline]") {
  TempDir root;
  write_idx_split(root.path / "a", 30, 0);
  write_idx_split(root.path / "b", 30, 100);
  TrainConfig cfg = tiny_config();
  cfg.model.image_channels = 1;
  cfg.fd_samples = 8;
  const std::string run = (root.path / "run").string(), file = run + "/fd_reference.safetensors";
  fs::create_directories(run);
  auto monitor_on = [&](const char* sub) {
    FdMonitor(cfg, open_dataset("fashion-mnist", (root.path / sub).string(), "test"), run, Device{}, false);
    return load_stats(file);
  };
  const StatsFile from_a = monitor_on("a");
  const StatsFile from_b = monitor_on("b");
  CHECK_THAT(from_b.metadata.at("source"), Catch::Contains(fs::canonical(root.path / "b").string()));
  CHECK(from_b.stats.mu != from_a.stats.mu);
  // A file cut short is made again with a warning, not a stop of the resume.
  fs::resize_file(file, 100);
  std::vector<std::string> warnings;
  const WarningHandler before = set_warning_handler([&](const std::string& w) { warnings.push_back(w); });
  const StatsFile again = monitor_on("b");
  set_warning_handler(before);
  CHECK(again.stats.mu == from_b.stats.mu);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("FD reference unreadable, made again") && Catch::Contains(file));
}

TEST_CASE("generator source: sample i depends on the seed and i, not on the batch size", "[eval_pipeline]") {
  SaganConfig c = tiny_config().model;
  c.num_classes = 10;
  Rng init(3);
  SaganGenerator g(c, init);
  g.eval();
  auto all = [&](int64_t batch) {
    auto src = generator_source(g, "tiny", 70, 5, Device{});
    std::vector<double> v;
    for (Tensor t = src->next(batch); t.defined(); t = src->next(batch)) {
      const std::vector<double> b = t.to_vector();
      v.insert(v.end(), b.begin(), b.end());
    }
    return v;
  };
  const std::vector<double> a = all(7), b = all(64);
  REQUIRE(a.size() == static_cast<size_t>(70 * c.image_channels * 32 * 32));
  CHECK(a == b);  // bitwise: eval-mode batch norm and attention work per sample
}
