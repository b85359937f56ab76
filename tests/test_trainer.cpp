// Trainer: a short training smoke test, exact resume (the same losses as an
// uninterrupted run), checkpoint round trip and corrupt-checkpoint errors.
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>

#include "sagan/core/io/image.h"
#include "sagan/core/ops.h"
#include "sagan/core/sync_free.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/models/run_outputs.h"
#include "sagan/models/train_run.h"
#include "sagan/models/trainer.h"
#include "tests/support/logged_losses.h"
#include "tests/support/resume_run.h"
#include "tests/support/run_options.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensorboard_events.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using sagan::testing::check_same_logged_values;
using sagan::testing::check_same_state;
using sagan::testing::more_steps;
using sagan::testing::quiet_options;
using sagan::testing::resume_options;
using sagan::testing::run_straight_and_resumed;
using sagan::testing::TempDir;
using sagan::testing::tiny_config;
using sagan::testing::TinyDataset;
using sagan::testing::write_image_folder;
namespace fs = std::filesystem;

TEST_CASE("training steps give finite losses and move every network", "[trainer]") {
  auto ds = std::make_shared<TinyDataset>(16);
  Trainer t(tiny_config(), ds);
  Tensor w0 = t.generator().named_parameters()[0].second.clone();
  Tensor d0 = t.discriminator().named_parameters()[0].second.clone();
  for (int i = 0; i < 3; ++i) {
    StepStats s = t.step();
    CHECK(std::isfinite(s.loss_d));
    CHECK(std::isfinite(s.loss_g));
    CHECK(s.loss_d >= 0.0);  // a sum of two hinge means
    CHECK(s.step == i + 1);
  }
  CHECK(sum(abs(t.generator().named_parameters()[0].second - w0)).item() > 0);
  CHECK(sum(abs(t.discriminator().named_parameters()[0].second - d0)).item() > 0);
  // gamma of every attention block received gradient and moved off 0
  auto gammas = t.gammas();
  REQUIRE(gammas.size() == 2);
  for (auto& [name, v] : gammas) CHECK(v != 0.0);
  Tensor imgs = t.sample(Tensor::zeros({2, 8}), Tensor::from_vector(std::vector<int64_t>{0, 2}, {2}));
  CHECK(imgs.shape() == Shape{2, 1, 32, 32});
  CHECK(sum(relu(abs(imgs) - 1.0)).item() == 0.0);  // tanh range
}

TEST_CASE("a training iteration reads values back once, after its last update", "[trainer][sync_free]") {
  // Inside the updates every read would stall a GPU (core/sync_free.h): the
  // step runs them in a sync-free region, which throws on a read, and reads
  // everything it logs and judges in one go at the end.
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = tiny_config();
  c.n_dis = 2;
  c.grad_clip = 1.0;
  Trainer t(c, ds);
  for (int i = 0; i < 3; ++i) {  // ema_start = 2: the copy, then the average
    StepInputs in = t.draw_inputs();
    const int64_t before = host_read_count();
    StepStats s = t.step(in);
    CHECK(host_read_count() == before + 1);
    CHECK(std::isfinite(s.loss_d));
    CHECK(s.grad_norm_d > 0);
  }
  CHECK(t.optimizer_d().step_count() == 6);
  CHECK(t.optimizer_g().step_count() == 3);
  // Labels are checked on the host before the region (the embeddings cannot
  // read device indices back inside it); nothing is updated.
  StepInputs bad = t.draw_inputs();
  bad.d[1].labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 7, 2}, {4});
  REQUIRE_THROWS_WITH(t.step(bad), Catch::Contains("Trainer::step: labels[2] = 7 is not a class of the model"));
  bad.d[1].labels = Tensor::zeros({4}, DType::F32);
  REQUIRE_THROWS_WITH(t.step(bad), Catch::Contains("labels must be a 1-d int64 tensor"));
  CHECK(t.optimizer_d().step_count() == 6);
  CHECK(t.step_count() == 3);
}

TEST_CASE("a step graph trains exactly like plain steps, across ema_start, with DiffAugment",
          "[trainer][step_graph][long]") {
  // On the CPU the graph runs the same code again at each replay; what this
  // checks is the machinery around it: inputs and Adam factors copied into
  // the buffers it reads, values read from what it left, one graph per EMA
  // phase.
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = tiny_config();
  c.n_dis = 2;
  c.ema_start = 3;
  c.grad_clip = 0.5;
  c.diffaug = GENERATE(std::string("none"), std::string("color,translation,cutout"));
  INFO("--diffaug " << c.diffaug);
  Trainer plain(c, ds), graphed(c, ds);
  graphed.set_step_graph(true);
  for (int i = 0; i < 5; ++i) {
    const StepStats a = plain.step(), b = graphed.step();
    INFO("step " << a.step);
    CHECK(a.loss_d == b.loss_d);
    CHECK(a.loss_g == b.loss_g);
    CHECK(a.d_real == b.d_real);
    CHECK(a.grad_norm_g == b.grad_norm_g);
  }
  check_same_state(plain, graphed);
  CHECK(graphed.optimizer_d().step_count() == 10);
  TrainConfig on_cpu = c;
  on_cpu.cuda_graph = true;  // the option itself wants a GPU
  // Named as a program sets it, as the Trainer's other checks name settings.
  REQUIRE_THROWS_WITH(Trainer(on_cpu, ds), "TrainConfig.cuda_graph (--cuda-graph): needs a CUDA device; this run is "
                                           "on cpu");
  TrainConfig far_gpu = c;
  far_gpu.device = "cuda:99";
  REQUIRE_THROWS_WITH(Trainer(far_gpu, ds), Catch::StartsWith(fmt::format(
                                                "TrainConfig.device (--device) cuda:99: {} CUDA device(s) present",
                                                cuda_device_count())));
}

namespace {
// TinyDataset whose examples fail to load from the (k+1)-th get() on: the
// loader's worker reads examples in the order of its batches, so batch
// n = k / batch_size + 1 (counted from 1) is the first to fail.
class FailingAfter : public TinyDataset {
 public:
  FailingAfter(int64_t n, int64_t k) : TinyDataset(n), k_(k) {}
  data::Example get(int64_t i) const override {
    SAGAN_CHECK(gets_++ < k_, "example {} could not be read", i);
    return TinyDataset::get(i);
  }

 private:
  int64_t k_;
  mutable std::atomic<int64_t> gets_{0};
};
}  // namespace

TEST_CASE("step() sends the next inputs ahead and changes nothing by it", "[trainer][prefetch][long]") {
  // step() draws the next iteration's inputs before reading this one's
  // values (on a GPU their copy overlaps the iteration). The values, the
  // models and every checkpointed counter (RNG and loader positions: those
  // before the draw ahead) are those of drawing each iteration's inputs
  // when it starts; draw_inputs() and step(inputs) put the drawn-ahead
  // inputs back first.
  auto ds = std::make_shared<TinyDataset>(16);
  TrainConfig c = tiny_config();
  c.n_dis = 2;
  c.ema_start = 3;
  c.diffaug = GENERATE(std::string("none"), std::string("color,translation,cutout"));
  INFO("--diffaug " << c.diffaug);
  Trainer ahead(c, ds), plain(c, ds);
  for (int i = 0; i < 6; ++i) {
    // Iteration 4 of `ahead` runs on inputs it drew itself after drawing
    // ahead during iteration 3.
    const StepStats a = i == 3 ? ahead.step(ahead.draw_inputs()) : ahead.step();
    const StepStats b = plain.step(plain.draw_inputs());
    INFO("step " << b.step);
    CHECK(a.loss_d == b.loss_d);
    CHECK(a.loss_g == b.loss_g);
    CHECK(a.d_fake == b.d_fake);
    if (i == 1 || i == 5) check_same_state(ahead, plain);
  }
}

TEST_CASE("an input that fails to load while drawn ahead fails the step that uses it", "[trainer][prefetch]") {
  // Batch 4, n_dis 2: iteration 2 reads examples 9-16, and the 13th read
  // fails, after iteration 2's first batch and latents are drawn. Iteration
  // 1 draws them ahead, keeps its own results, puts the loader and the RNGs
  // back, and leaves the error to iteration 2, which draws again.
  TrainConfig c = tiny_config();
  c.n_dis = 2;
  Trainer probe(c, std::make_shared<FailingAfter>(16, 12));
  const StepStats want = probe.step(probe.draw_inputs());
  REQUIRE_THROWS_WITH(probe.draw_inputs(), Catch::Contains("could not be read"));

  Trainer t(c, std::make_shared<FailingAfter>(16, 12));
  const StepStats s = t.step();
  CHECK(s.loss_d == want.loss_d);
  CHECK(s.loss_g == want.loss_g);
  REQUIRE_THROWS_AS(t.step(), InputsNotDrawn);  // no update made: a checkpoint may keep this state
  REQUIRE_THROWS_WITH(t.step(), Catch::Contains("could not be read"));
  CHECK(t.step_count() == 1);
  CHECK(t.optimizer_d().step_count() == 2);
  // Its state, RNG and loader positions included, is that of one clean
  // iteration: a checkpoint of it resumes where the data left off.
  Trainer clean(c, std::make_shared<TinyDataset>(16));
  clean.step();
  check_same_state(t, clean);
}

TEST_CASE("a data set's own exception fails the step as InputsNotDrawn", "[trainer]") {
  // A program's Dataset may throw std::exception types of its own; they are
  // data errors like an unreadable file, with the same guarantees.
  struct Throwing : TinyDataset {
    Throwing() : TinyDataset(16) {}
    data::Example get(int64_t i) const override {
      if (i == 9) throw std::runtime_error("network share gone");
      return TinyDataset::get(i);
    }
  };
  TrainConfig c = tiny_config();
  Trainer t(c, std::make_shared<Throwing>());
  bool thrown = false;
  for (int i = 0; i < 5 && !thrown; ++i) {
    try {
      t.step();
    } catch (const InputsNotDrawn& e) {
      thrown = true;
      CHECK_THAT(e.what(), Catch::Contains("DataLoader(tiny): example 9 could not be read: network share gone"));
    }
  }
  CHECK(thrown);
}

TEST_CASE("each model's parameters are flat: one Adam call per step, EMA over whole buffers", "[trainer][flat]") {
  auto ds = std::make_shared<TinyDataset>(16);
  Trainer t(tiny_config(), ds);
  for (nn::Module* m : std::vector<nn::Module*>{&t.generator(), &t.discriminator(), &t.ema_generator()}) {
    const auto& flat = m->flat_parameters();
    REQUIRE(flat != nullptr);
    for (auto& [n, p] : m->named_parameters()) {
      INFO(n);
      CHECK(p.storage() == flat->data().storage());
    }
  }
  CHECK(t.generator().flat_parameters()->same_layout(*t.ema_generator().flat_parameters()));
  CHECK_FALSE(t.ema_generator().flat_parameters()->has_grad_buffer());  // never trained
  for (int i = 0; i < 3; ++i) {                                         // ema_start = 2: a copy, then the average
    t.step();
    CHECK(t.optimizer_d().last_step_launches().calls == 1);
    CHECK(t.optimizer_d().last_step_launches().tensors == 1);
    CHECK(t.optimizer_g().last_step_launches().calls == 1);
    CHECK(t.optimizer_g().last_step_launches().tensors == 1);
    for (auto& [n, p] : t.generator().named_parameters()) {
      INFO(n);
      REQUIRE(p.grad().defined());
      CHECK(p.grad().storage() == t.generator().flat_parameters()->grad().storage());
    }
  }
  // The EMA: at step 3 (decay 0.9) it lies between its old value and G's.
  CHECK(sum(abs(t.ema_generator().flat_parameters()->data() - t.generator().flat_parameters()->data())).item() > 0);
}

TEST_CASE("gradient clipping: the logged norm is the global one; gradients are scaled to the limit",
          "[trainer][flat][norm]") {
  auto ds = std::make_shared<TinyDataset>(16);
  auto per_parameter_norm = [](const nn::Module& m) {
    double sq = 0;
    for (auto& [n, p] : m.named_parameters())
      for (double v : p.grad().to_vector()) sq += v * v;
    return std::sqrt(sq);
  };
  TrainConfig c = tiny_config();
  c.grad_clip = 1e30;  // never reached: the gradients are left as they are
  Trainer t(c, ds);
  StepStats s = t.step();
  // D's gradients are those of its last D step (the G step leaves D frozen).
  CHECK(s.grad_norm_d > 0);
  CHECK(s.grad_norm_d == Approx(per_parameter_norm(t.discriminator())).epsilon(1e-5));
  CHECK(s.grad_norm_g == Approx(per_parameter_norm(t.generator())).epsilon(1e-5));

  c.grad_clip = 1e-3;  // always reached
  Trainer u(c, ds);
  StepStats v = u.step();
  CHECK(v.grad_norm_d == Approx(s.grad_norm_d).epsilon(1e-6));  // before clipping: the same first step
  CHECK(per_parameter_norm(u.discriminator()) == Approx(1e-3).epsilon(1e-4));
  CHECK(per_parameter_norm(u.generator()) == Approx(1e-3).epsilon(1e-4));
}

TEST_CASE("a resumed trainer continues exactly like an uninterrupted one", "[trainer][resume]") {
  auto ds = std::make_shared<TinyDataset>(10);  // 2 batches per epoch: resume crosses epochs
  check_same_logged_values(run_straight_and_resumed(tiny_config(), ds, 5, 2));
}

TEST_CASE("checkpoints round-trip every tensor and reject corrupt files", "[trainer][checkpoint]") {
  auto ds = std::make_shared<TinyDataset>(8);
  TempDir dir_scope;
  fs::path dir = dir_scope.path;
  std::string path = (dir / "a.safetensors").string();
  Trainer t(tiny_config(), ds);
  t.step();
  t.save_checkpoint(path);
  Trainer u(tiny_config(), ds);
  u.load_checkpoint(path);
  check_same_state(t, u);
  const NamedTensors a = t.checkpoint_tensors();
  // Names include the SN vectors, BN statistics, optimiser moments and EMA.
  auto has = [&](const std::string& part) {
    for (auto& [k, v] : a)
      if (k.find(part) != std::string::npos) return true;
    return false;
  };
  CHECK(has("weight_u"));
  CHECK(has("weight_v"));
  CHECK(has("running_mean"));
  CHECK(has("opt_D.exp_avg_sq."));
  CHECK(has("G_ema."));

  // A truncated copy fails with the file's name; the original stays intact.
  std::string bad = (dir / "truncated.safetensors").string();
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(bad, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  REQUIRE_THROWS_WITH(u.load_checkpoint(bad), Catch::Contains("truncated.safetensors"));
  CHECK_NOTHROW(u.load_checkpoint(path));

  // A checkpoint of another architecture is refused, naming both.
  TrainConfig other = tiny_config();
  other.model.ch = 8;
  Trainer w(other, ds);
  REQUIRE_THROWS_WITH(w.load_checkpoint(path), Catch::Contains("differs from the configured model"));
  // So is one whose discriminator alone is wider (--d-ch), before any tensor is read.
  other = tiny_config();
  other.model.d_ch = 8;  // G keeps ch 4 (16 wide), D 16 wide
  Trainer v(other, ds);
  REQUIRE_THROWS_WITH(v.load_checkpoint(path), Catch::Contains("\"d_ch\":4") && Catch::Contains("\"d_ch\":8"));
  v.step();  // and such a model trains
  CHECK(v.discriminator().state().at("blocks.0.conv1.weight_orig").size(0) == 16);
  CHECK(v.generator().state().at("linear.weight_orig").size(0) == 16 * 16);
}

TEST_CASE("run_training: an interrupted and resumed run logs the same losses", "[trainer][resume][run][long]") {
  TempDir root_scope;
  fs::path root = root_scope.path;
  // An image folder data set of 12 PNGs in 2 classes.
  for (int k = 0; k < 2; ++k) {
    fs::create_directories(root / "data" / ("class" + std::to_string(k)));
    for (int i = 0; i < 6; ++i) {
      io::Image img(32, 32, 3);
      Rng g(static_cast<uint64_t>(k * 100 + i));
      for (auto& p : img.pixels) p = static_cast<uint8_t>(g.below(256));
      io::write_png((root / "data" / ("class" + std::to_string(k)) / (std::to_string(i) + ".png")).string(), img);
    }
  }
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.data_path = (root / "data").string();
  c.log_every = 1;
  c.sample_every = 2;
  c.checkpoint_every = 2;
  const RunOptions quiet = quiet_options();
  const auto [a, b] = sagan::testing::train_straight_and_resumed(c, quiet, root, 4, 2);
  CHECK(!a.empty());
  CHECK(a == b);
  CHECK(fs::exists(root / "split" / "samples" / "step_00000004.png"));
  CHECK(latest_checkpoint((root / "split").string()).find("step_00000004") != std::string::npos);
  // Each sample grid is also a TensorBoard image summary, the same PNG pixels.
  {
    std::vector<std::string> event_files;
    for (auto& e : fs::directory_iterator(root / "straight" / "tb")) event_files.push_back(e.path().string());
    REQUIRE(event_files.size() == 1);
    std::vector<int64_t> steps;
    for (const testing::Event& e : testing::read_events(event_files[0]))
      for (const testing::ImageValue& v : e.images) {
        CHECK(v.tag == "samples");
        steps.push_back(e.step);
        io::Image png =
            io::read_image((root / "straight" / "samples" / fmt::format("step_{:08}.png", e.step)).string());
        io::Image tb = io::decode_png(reinterpret_cast<const uint8_t*>(v.encoded.data()), v.encoded.size(), "tb");
        CHECK((v.height == png.height && v.width == png.width && v.colorspace == png.channels));
        CHECK(tb.pixels == png.pixels);
      }
    CHECK(steps == std::vector<int64_t>{2, 4});
  }
  // Starting a new run over an existing one is refused.
  c.steps = 4;
  c.run_dir = (root / "split").string();
  REQUIRE_THROWS_WITH(run_training(c, quiet), Catch::Contains("already exists"));
}

namespace {
// One column of a metrics CSV, as text (blank cells kept).
std::vector<std::string> csv_column(const fs::path& csv, const std::string& name) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  auto split = [](const std::string& l) {
    std::vector<std::string> cells;
    size_t b = 0;
    for (size_t e; (e = l.find(',', b)) != std::string::npos; b = e + 1) cells.push_back(l.substr(b, e - b));
    cells.push_back(l.substr(b));
    return cells;
  };
  std::vector<std::string> header = split(line), out;
  auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end()) return out;
  const size_t col = static_cast<size_t>(it - header.begin());
  while (std::getline(in, line)) out.push_back(split(line).at(col));
  return out;
}
}  // namespace

TEST_CASE("run_training --fd-every logs the Frechet distance and leaves training unchanged",
          "[trainer][run][fd][long]") {
  TempDir root_scope;
  fs::path root = root_scope.path;
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.data_path = (root / "data").string();
  for (int k = 0; k < 2; ++k) {
    fs::create_directories(root / "data" / ("c" + std::to_string(k)));
    for (int i = 0; i < 8; ++i) {
      io::Image img(32, 32, 3);
      Rng g(static_cast<uint64_t>(k * 100 + i + 1));
      for (auto& p : img.pixels) p = static_cast<uint8_t>(g.below(256));
      io::write_png((root / "data" / ("c" + std::to_string(k)) / (std::to_string(i) + ".png")).string(), img);
    }
  }
  c.log_every = 1;
  c.sample_every = c.checkpoint_every = 2;
  c.steps = 4;
  const RunOptions quiet = quiet_options();

  c.run_dir = (root / "plain").string();
  run_training(c, quiet);
  c.fd_every = 2;
  c.fd_samples = 16;
  c.fd_features = "fmnist";  // the committed classifier: no Inception weights needed
  c.run_dir = (root / "fd").string();
  run_training(c, quiet);
  // Resumed from step 2: the reference statistics are reused, the FD values repeat.
  c.run_dir = (root / "fd_split").string();
  c.steps = 2;
  run_training(c, quiet);
  REQUIRE(fs::exists(root / "fd_split" / "fd_reference.safetensors"));
  run_training(more_steps(4), resume_options(c.run_dir));

  std::vector<std::string> fd = csv_column(root / "fd" / "metrics.csv", "fd");
  REQUIRE(fd.size() == 4);
  CHECK(fd[0].empty());
  CHECK(fd[2].empty());
  for (int i : {1, 3}) {
    INFO("step " << i + 1 << ": '" << fd[static_cast<size_t>(i)] << "'");
    REQUIRE(!fd[static_cast<size_t>(i)].empty());
    const double v = std::stod(fd[static_cast<size_t>(i)]);
    CHECK(std::isfinite(v));
    CHECK(v > 0);  // a random generator is far from the data
  }
  CHECK(csv_column(root / "fd_split" / "metrics.csv", "fd") == fd);
  CHECK(csv_column(root / "plain" / "metrics.csv", "fd").empty());
  // Measuring uses its own random streams: the losses are those of the plain run.
  for (const char* col : {"loss_d", "loss_g", "d_real", "d_fake"})
    CHECK(csv_column(root / "fd" / "metrics.csv", col) == csv_column(root / "plain" / "metrics.csv", col));
}

TEST_CASE("FD settings are checked before any work", "[trainer][fd]") {
  TrainConfig c = tiny_config();
  c.model.num_classes = 3;
  c.fd_every = 15;
  c.log_every = 10;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--fd-every: 15 is not a multiple of --log-every (10)"));
  c.fd_every = 20;
  c.fd_samples = 1;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--fd-samples: must be >= 2"));
  c.fd_samples = 100;
  c.dataset = "cifar10";
  c.data_path = "/nonexistent";
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("give --fd-weights FILE"));
  c.fd_features = "fmnist";
  CHECK_NOTHROW(c.validate());
  c.fd_features = "vgg";
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--fd-features: 'vgg' is not one of"));
  // The settings survive the config round trip (a resumed run measures alike).
  c.fd_features = "inception";
  c.fd_weights = "/w/fid.safetensors";
  TrainConfig r = TrainConfig::from_json(c.to_json(), "test");
  CHECK(r.fd_every == 20);
  CHECK(r.fd_samples == 100);
  CHECK(r.fd_features == "inception");
  CHECK(r.fd_weights == "/w/fid.safetensors");
}

TEST_CASE("run_training saves a checkpoint before stopping on an image it cannot read: no step is lost",
          "[trainer][run]") {
  TempDir root_scope;
  const fs::path root = root_scope.path;
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.channels = "3";  // no header read at the start: the bad file is met while training
  c.data_path = write_image_folder(root);
  io::write_file_atomic((root / "data" / "class1" / "9.png").string(), std::string("not an image"));
  c.steps = 40;  // more than an epoch: every image is read
  c.checkpoint_every = 1000;
  c.run_dir = (root / "run").string();
  const RunOptions quiet = quiet_options();
  std::string message;
  try {
    run_training(c, quiet);
  } catch (const Error& e) {
    message = e.what();
  }
  INFO(message);
  REQUIRE_THAT(message, Catch::Contains("9.png"));
  const std::string last = latest_checkpoint(c.run_dir);
  REQUIRE_FALSE(last.empty());
  const int64_t step = std::stoll(fs::path(last).stem().string().substr(5));  // step_00000NNN
  REQUIRE(step > 0);
  CHECK_THAT(message, Catch::Contains(fmt::format("saved just now, at step {}: nothing was lost", step)) &&
                          Catch::Contains("fix or remove the file, then: sagan-train --resume"));
  // Fixed, the run resumes from there to its end.
  fs::remove(root / "data" / "class1" / "9.png");
  run_training(more_steps(step + 2), resume_options(c.run_dir));
  CHECK(latest_checkpoint(c.run_dir) == checkpoint_path(c.run_dir, step + 2));
}

TEST_CASE("run_training keeps the data path absolute, so a resume from another folder finds the data",
          "[trainer][resume][run]") {
  TempDir root_scope;
  const fs::path root = root_scope.path;
  write_image_folder(root);  // root/data
  struct Cwd {         // the test's working folder, restored whatever happens
    fs::path before = fs::current_path();
    ~Cwd() { fs::current_path(before); }
  } cwd;
  fs::current_path(root);
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.data_path = "data";  // relative, as a user types it
  c.steps = 1;
  c.run_dir = (root / "run").string();
  const RunOptions quiet = quiet_options();
  run_training(c, quiet);
  TrainConfig saved;
  read_config_file((root / "run" / "config.json").string(), saved, nullptr);
  CHECK(fs::path(saved.data_path).is_absolute());
  CHECK(fs::equivalent(saved.data_path, root / "data"));
  fs::create_directories(root / "elsewhere");
  fs::current_path(root / "elsewhere");
  run_training(more_steps(2), resume_options(c.run_dir));
  CHECK(fs::exists(root / "run" / "checkpoints" / "step_00000002.safetensors"));
}

TEST_CASE("run_training --resume applies a new learning rate and records it, and refuses another architecture",
          "[trainer][resume][run][long]") {
  TempDir root_scope;
  fs::path root = root_scope.path;
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.data_path = write_image_folder(root);
  c.log_every = 1;
  c.sample_every = c.checkpoint_every = 2;
  c.steps = 2;
  c.run_dir = (root / "run").string();
  const RunOptions quiet = quiet_options();
  run_training(c, quiet);

  // --resume RUN --steps 3 --lr-d 1e-5: applied, in config.json, the log and the metrics.
  TrainConfig more = more_steps(3);
  more.adam_d.lr = 1e-5;
  RunOptions o = resume_options(c.run_dir);
  o.given.from_flag("lr_d", "--lr-d");
  run_training(more, o);
  TrainConfig after;
  read_config_file((root / "run" / "config.json").string(), after, nullptr);
  CHECK(after.adam_d.lr == 1e-5);
  CHECK(after.steps == 3);
  CHECK(after.adam_g.lr == c.adam_g.lr);
  std::vector<std::string> lr_d = csv_column(root / "run" / "metrics.csv", "lr_d");
  REQUIRE(lr_d.size() == 3);
  CHECK(std::stod(lr_d[1]) == c.adam_d.lr);
  CHECK(std::stod(lr_d[2]) == 1e-5);
  std::ifstream log(root / "run" / "config_changes.log");
  std::string line;
  REQUIRE(std::getline(log, line));
  CHECK(line == "step 2: steps 2 -> 3 (--steps); lr_d 0.0004 -> 1e-05 (--lr-d)");

  // --resume RUN --ch 8 (the run has 4): refused, naming the option, before any work.
  const auto files_before = std::distance(fs::recursive_directory_iterator(root / "run"), {});
  TrainConfig other = more_steps(4);
  other.model.ch = 8;
  RunOptions r = resume_options(c.run_dir);
  r.given.from_flag("model.ch", "--ch");
  REQUIRE_THROWS_WITH(run_training(other, r),
                      Catch::StartsWith("--ch: 8 given with --resume, but the run has model.ch = 4"));
  CHECK(std::distance(fs::recursive_directory_iterator(root / "run"), {}) == files_before);
  CHECK(latest_checkpoint(c.run_dir).find("step_00000003") != std::string::npos);
}

TEST_CASE("an unwritable --run-dir is reported before the data is loaded", "[trainer][run]") {
  TempDir root_scope;
  fs::path root = root_scope.path;
  io::write_file_atomic((root / "file").string(), "not a directory");
  TrainConfig c = tiny_config();
  c.dataset = "folder";
  c.data_path = (root / "no_such_data").string();  // loading it would fail
  c.run_dir = (root / "file" / "run").string();
  const RunOptions quiet = quiet_options();
  REQUIRE_THROWS_WITH(run_training(c, quiet), Catch::StartsWith("TrainConfig.run_dir (--run-dir) " + c.run_dir +
                                                                ": cannot create the directory"));
  if (::geteuid() != 0) {  // root writes through permission bits
    fs::create_directories(root / "ro");
    fs::permissions(root / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    c.run_dir = (root / "ro" / "run").string();
    REQUIRE_THROWS_WITH(run_training(c, quiet), Catch::Contains(c.run_dir));
    fs::permissions(root / "ro", fs::perms::owner_all);
  }
}

TEST_CASE("config JSON: integer settings take only integers in range", "[trainer][config]") {
  auto load = [](const std::string& text) { return TrainConfig::from_json(text, "my.json"); };
  // 1e300 into an int64 was undefined behaviour (UBSan in fuzz_config_json;
  // the inputs are kept in tests/fuzz/corpus/config_json/regress_*),
  // fractions were truncated and out-of-range integers wrapped.
  REQUIRE_THROWS_WITH(load(R"({"batch_size": 1e300})"), Catch::Contains("my.json") && Catch::Contains("batch_size"));
  REQUIRE_THROWS_WITH(load(R"({"batch_size": 64.9})"), Catch::Contains("batch_size") && Catch::Contains("64.9"));
  REQUIRE_THROWS_WITH(load(R"({"steps": 18446744073709551615})"),
                      Catch::Contains("steps") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(load(R"({"seed": -1})"), Catch::Contains("my.json") && Catch::Contains("seed"));
  REQUIRE_THROWS_WITH(load(R"({"model": {"g_attn_res": [16.5]}})"), Catch::Contains("g_attn_res"));
  REQUIRE_THROWS_WITH(load(R"({"model": {"ch": "64"}})"), Catch::Contains("ch") && Catch::Contains("string"));
  // Integers are fine where a real number is expected, and in range they load.
  TrainConfig c = load(R"({"batch_size": 32, "seed": 18446744073709551615, "lr_d": 1, "model": {"d_attn_res": [8]}})");
  CHECK(c.batch_size == 32);
  CHECK(c.seed == UINT64_MAX);
  CHECK(c.adam_d.lr == 1.0);
  CHECK(c.model.d_attention() == std::vector<int64_t>{8});
}

TEST_CASE("a Trainer checks its config and puts back the process-wide switches it set", "[trainer]") {
  auto ds = std::make_shared<TinyDataset>(8);
  TrainConfig bad = tiny_config();
  bad.n_dis = 0;
  REQUIRE_THROWS_WITH(
      Trainer(bad, ds),
      Catch::StartsWith("TrainConfig.n_dis (--n-dis): must be positive"));  // was std::out_of_range at the first step
  const MatmulPrecision before = matmul_precision();
  {
    TrainConfig c = tiny_config();
    c.precision = "bf16";
    Trainer t(c, ds);
    CHECK(matmul_precision() == MatmulPrecision::Bf16);
  }
  CHECK(matmul_precision() == before);
  // A constructor that fails after setting them puts them back too.
  TrainConfig graph_on_cpu = tiny_config();
  graph_on_cpu.precision = "bf16";
  graph_on_cpu.cuda_graph = true;
  REQUIRE_THROWS_WITH(Trainer(graph_on_cpu, ds), Catch::Contains("(--cuda-graph): needs a CUDA device"));
  CHECK(matmul_precision() == before);
}

TEST_CASE("metric_scalar: a metrics cell as TensorBoard's float", "[trainer][run_outputs]") {
  CHECK(metric_scalar("0.25") == 0.25f);
  CHECK(metric_scalar("-3") == -3.0f);
  // Not numbers: left out of TensorBoard, not logged as 0.
  CHECK_FALSE(metric_scalar("").has_value());
  CHECK_FALSE(metric_scalar("abc").has_value());
  CHECK_FALSE(metric_scalar("1.5x").has_value());
  // Beyond float's range: the infinity of its sign; below it, a subnormal, not an error.
  CHECK(metric_scalar("1e39") == std::numeric_limits<float>::infinity());
  CHECK(metric_scalar("-1e39") == -std::numeric_limits<float>::infinity());
  const std::optional<float> tiny = metric_scalar("1e-39");
  REQUIRE(tiny.has_value());
  CHECK(*tiny > 0.0f);
  CHECK(std::isnan(*metric_scalar("nan")));  // an --on-nan skip row's loss
}
