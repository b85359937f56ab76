// sagan-train-classifier: trains the Fashion-MNIST CNN whose 128-d features
// give sagan-eval an offline Frechet distance (models/quality/fmnist_classifier.h),
// with the engine itself: Adam, cosine learning-rate decay, random flips and
// shifts, dropout before the last layer. Reports test accuracy after every
// epoch and saves the weights (safetensors, with the accuracy and command
// in the metadata).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/safetensors.h"
#include "sagan/core/ops.h"
#include "sagan/layers/adam.h"
#include "sagan/models/data/loader.h"
#include "sagan/models/quality/fmnist_classifier.h"
#include "tools/cli_common.h"

using namespace sagan;
using namespace sagan::quality;

namespace {

// Each image moved by up to `max_shift` pixels in x and y, the border filled
// with the background (-1); a cheap augmentation that helps a few-epoch run.
Tensor random_shift(const Tensor& images, int64_t max_shift, Rng& gen) {
  if (max_shift == 0) return images;
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  std::vector<float> in = images.to_float_vector(), out(in.size(), -1.0f);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t dy = static_cast<int64_t>(gen.below(static_cast<uint64_t>(2 * max_shift + 1))) - max_shift;
    const int64_t dx = static_cast<int64_t>(gen.below(static_cast<uint64_t>(2 * max_shift + 1))) - max_shift;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sy = y - dy, sx = x - dx;
        if (sy >= 0 && sy < H && sx >= 0 && sx < W)
          out[static_cast<size_t>((b * H + y) * W + x)] = in[static_cast<size_t>((b * H + sy) * W + sx)];
      }
  }
  return Tensor::from_vector(out, images.shape());
}

// Over the whole test set, --limit or not: the accuracy saved with the
// weights is always comparable.
double accuracy(FmnistClassifier& model, const data::Dataset& test) {
  model.eval();
  NoGradGuard ng;
  const int64_t n = test.size(), bs = 500;
  int64_t correct = 0;
  for (int64_t i0 = 0; i0 < n; i0 += bs) {
    const int64_t b = std::min(bs, n - i0);
    std::vector<float> px(static_cast<size_t>(b * 28 * 28));
    std::vector<int64_t> labels(static_cast<size_t>(b));
    for (int64_t k = 0; k < b; ++k) {
      data::Example ex = test.get(i0 + k);
      for (int64_t j = 0; j < 28 * 28; ++j)
        px[static_cast<size_t>(k * 784 + j)] = ex.image.pixels[static_cast<size_t>(j)] / 127.5f - 1.0f;
      labels[static_cast<size_t>(k)] = ex.label;
    }
    std::vector<double> logits = model.forward(Tensor::from_vector(px, {b, 1, 28, 28})).logits.to_vector();
    for (int64_t k = 0; k < b; ++k) {
      const double* row = logits.data() + k * 10;
      if (std::max_element(row, row + 10) - row == labels[static_cast<size_t>(k)]) ++correct;
    }
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

struct ClassifierOptions {
  std::string data_dir = data::kFashionMnistDir, out, init;
  int64_t epochs = 4, batch = 128, shift = 2, limit = 0, warmup = 200;
  double lr = 2e-3, dropout = 0.3;
  uint64_t seed = 0;
  bool hflip = true, quiet = false;
  std::string command;  // argv, kept in the weights' metadata

  void check() const {
    SAGAN_CHECK(epochs >= 1, "--epochs must be >= 1, got {}", epochs);
    SAGAN_CHECK(batch >= 2, "--batch-size must be >= 2 (batch norm), got {}", batch);
    SAGAN_CHECK(lr > 0 && std::isfinite(lr), "--lr must be positive and finite, got {}", lr);
    SAGAN_CHECK(warmup >= 0, "--warmup must be >= 0, got {}", warmup);
    io::check_writable_file(out, "-o " + out);  // now, not after training
    cli::check_output_not_input(out, "-o " + out, {{"--init", init}});
    SAGAN_CHECK(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1), got {}", dropout);
    SAGAN_CHECK(shift >= 0 && shift < 14, "--shift must be in [0, 14), got {}", shift);
    SAGAN_CHECK(limit >= 0, "--limit must be >= 0, got {}", limit);
  }
};

void add_options(CLI::App& app, ClassifierOptions& o) {
  app.add_option("--data", o.data_dir, "Fashion-MNIST directory (IDX files)")->capture_default_str();
  app.add_option("--epochs", o.epochs, "Epochs over the 60000 training images")->capture_default_str();
  app.add_option("--batch-size", o.batch, "Batch size")->capture_default_str();
  app.add_option("--lr", o.lr, "Peak Adam learning rate (linear warm-up, then cosine decay to 0)")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Warm-up steps")->capture_default_str();
  app.add_option("--dropout", o.dropout, "Dropout on the 128-d features while training")->capture_default_str();
  app.add_option("--shift", o.shift, "Random translation in pixels (0 = off)")->capture_default_str();
  app.add_flag("--hflip,!--no-hflip", o.hflip, "Random horizontal flips (default: on)");
  app.add_option("--limit", o.limit,
                 "Train on about this many images per epoch, in whole batches of --batch-size (at least one); 0 = "
                 "all. For quick checks: the test accuracy is still over the whole test set");
  app.add_option("--seed", o.seed, "Seed of initialisation, data order and augmentation")->capture_default_str();
  app.add_option("--init", o.init,
                 "Start from these weights (a file this tool wrote) instead of a fresh initialisation");
  // Required: a default would overwrite the committed weights behind every
  // Fashion-MNIST FD (models/quality/weights/fmnist_cnn.safetensors).
  app.add_option("-o,--out", o.out, "Weights file to write (safetensors); replace the committed one only on purpose")
      ->required();
  app.add_flag("--quiet", o.quiet, "No per-step progress");
}

// Loads --init weights into the model; returns the commands that made them.
std::string load_init(FmnistClassifier& model, const std::string& init) {
  SAGAN_CHECK(std::filesystem::exists(init), "--init {}: no such file", init);
  SAGAN_CHECK(std::filesystem::is_regular_file(init), "--init {}: not a file", init);
  io::SafetensorsFile f;
  try {
    f = io::load_safetensors(init);
  } catch (const Error& e) {
    SAGAN_FAIL("--init {}: {}", init, e.what());
  }
  std::map<std::string, Tensor> state(f.tensors.begin(), f.tensors.end());
  try {
    model.load_state(state);
  } catch (const Error& e) {
    SAGAN_FAIL("--init {}: {}", init, e.what());
  }
  std::string history = f.metadata.count("command") ? f.metadata.at("command") : "unknown";
  if (f.metadata.count("init_history")) history = f.metadata.at("init_history") + "; then " + history;
  return history;
}

// Trains for o.epochs (warm-up, cosine decay); returns the last test accuracy.
double train(const ClassifierOptions& o, FmnistClassifier& model, data::DataLoader& loader, int64_t per_epoch,
             const data::Dataset& test) {
  const int64_t total = per_epoch * o.epochs;
  nn::Adam opt(model.named_parameters(), AdamOptions{o.lr, 0.9, 0.999, 1e-8});
  Rng aug(o.seed ^ 0x5bd1e995u);
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  double acc = 0;
  for (int64_t e = 0, step = 0; e < o.epochs; ++e) {
    double loss_sum = 0;
    for (int64_t i = 0; i < per_epoch; ++i, ++step) {
      const double warm =
          std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(std::max<int64_t>(o.warmup, 1)));
      const double cosine = 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total)));
      opt.options().lr = o.lr * warm * cosine;
      data::Batch b = loader.next();
      Tensor x = random_shift(b.images, o.shift, aug);
      opt.zero_grad();
      Tensor loss = cross_entropy(model.forward(x, o.dropout, &aug).logits, b.labels);
      loss.backward();
      opt.step();
      loss_sum += loss.item();
      if (!o.quiet && (i + 1) % 50 == 0) {
        fmt::print("\r  epoch {} step {}/{}  loss {:.4f}  {:.0f} img/s   ", e + 1, i + 1, per_epoch,
                   loss_sum / static_cast<double>(i + 1), static_cast<double>((step + 1) * o.batch) / seconds());
        std::fflush(stdout);
      }
    }
    acc = accuracy(model, test);
    fmt::print("{}epoch {}: train loss {:.4f}, test accuracy {:.2f}% ({:.0f} s)\n", o.quiet ? "" : "\n", e + 1,
               loss_sum / static_cast<double>(per_epoch), 100 * acc, seconds());
    std::fflush(stdout);
  }
  return acc;
}

void save_weights(const ClassifierOptions& o, const FmnistClassifier& model, double acc, double seconds,
                  const std::string& init_history) {
  NamedTensors tensors;
  for (auto& [k, v] : model.state()) tensors.emplace_back(k, v);
  std::filesystem::path op(o.out);
  if (op.has_parent_path()) std::filesystem::create_directories(op.parent_path());
  std::map<std::string, std::string> meta = {{"model", "fmnist-cnn (models/quality/fmnist_classifier.h)"},
                                             {"test_accuracy", fmt::format("{:.4f}", acc)},
                                             {"epochs", std::to_string(o.epochs)},
                                             {"train_seconds", fmt::format("{:.0f}", seconds)},
                                             {"command", o.command}};
  if (!init_history.empty()) meta["init_history"] = init_history;
  io::save_safetensors(o.out, tensors, meta);
}

int run(const ClassifierOptions& o) {
  o.check();
  auto train_set = data::fashion_mnist("train", o.data_dir);
  auto test_set = data::fashion_mnist("test", o.data_dir);
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.hflip = o.hflip;
  lo.seed = o.seed;
  data::DataLoader loader(train_set, lo);
  const int64_t per_epoch = o.limit > 0 ? std::max<int64_t>(1, o.limit / o.batch) : loader.batches_per_epoch();

  Rng gen(o.seed);
  FmnistClassifier model(gen);
  const std::string init_history = o.init.empty() ? "" : load_init(model, o.init);
  model.train();
  fmt::print("sagan-train-classifier: {} parameters, {} epochs x {} steps of {} images\n", model.num_parameters(),
             o.epochs, per_epoch, o.batch);
  const auto t0 = std::chrono::steady_clock::now();
  const double acc = train(o, model, loader, per_epoch, *test_set);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  save_weights(o, model, acc, seconds, init_history);
  fmt::print("sagan-train-classifier: test accuracy {:.2f}% after {} epochs ({:.0f} s); wrote {}\n", 100 * acc,
             o.epochs, seconds, o.out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sagan-train-classifier: train the Fashion-MNIST CNN whose penultimate 128-d features give sagan-eval an\n"
      "offline Frechet distance (--features fmnist). Uses Debian's dataset-fashion-mnist by default."};
  ClassifierOptions o;
  for (int i = 0; i < argc; ++i) o.command += (i ? " " : "") + std::string(argv[i]);
  add_options(app, o);
  return cli::parse_and_run("sagan-train-classifier", app, argc, argv, [&] { return run(o); });
}
