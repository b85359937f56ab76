// The checkpoint loader (models/checkpoint_file.cpp) on arbitrary bytes:
// parse_checkpoint (what open_checkpoint does after reading the file: the
// safetensors reader, format and config metadata, finite tensors), then
// restore_training_checkpoint and load_generator into a fixed tiny model of
// the seeds' architecture. Every input is refused with an error naming the
// file, or restores; a restored model holds only finite values.
//
// Seeds: a trained tiny checkpoint and variants, written by this harness:
//   SAGAN_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/checkpoint <build>/tests/fuzz/fuzz_checkpoint
#include <cstdlib>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/safetensors.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/finite_check.h"
#include "sagan/models/trainer.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

namespace {

// 24 random 32x32 gray images in 3 classes.
class Images : public data::Dataset {
 public:
  std::string name() const override { return "fuzz"; }
  int64_t size() const override { return 24; }
  int64_t num_classes() const override { return 3; }
  int64_t channels() const override { return 1; }
  int64_t height() const override { return 32; }
  int64_t width() const override { return 32; }
  data::Example get(int64_t i) const override {
    data::Example e;
    e.image = io::Image(32, 32, 1);
    Rng g(static_cast<uint64_t>(i));
    for (auto& p : e.image.pixels) p = static_cast<uint8_t>(g.below(256));
    e.label = i % 3;
    return e;
  }
};

TrainConfig tiny() {
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.batch_size = 4;
  c.device = "cpu";
  c.seed = 11;
  return c;
}

Trainer& model() {
  static Trainer t(tiny(), std::make_shared<Images>());
  return t;
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  Trainer& t = model();
  t.step();
  const std::string full = dir + "/seed_tiny_step1";
  t.save_checkpoint(full);
  io::SafetensorsFile f = io::load_safetensors(full);
  // Networks only (what an exported or trimmed file might hold), and
  // metadata alone.
  NamedTensors nets;
  for (auto& [name, v] : f.tensors)
    if (name.rfind("opt_", 0) != 0) nets.emplace_back(name, v);
  io::save_safetensors(dir + "/seed_tiny_networks_only", nets, f.metadata);
  io::save_safetensors(dir + "/seed_metadata_only", {}, f.metadata);
  std::exit(0);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SAGAN_FUZZ_WRITE_SEEDS")) write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.safetensors";
  fuzz::refuse_cleanly(name, [&] {
    CheckpointFile c = parse_checkpoint(data, size, name);
    for (const auto& [tensor_name, t] : c.file.tensors) FUZZ_ASSERT(all_finite(t));
    Trainer& t = model();
    const TrainingParts parts{t.generator(), t.discriminator(), t.ema_generator(), t.optimizer_g(), t.optimizer_d()};
    restore_training_checkpoint(c, t.config().model, parts);
    load_generator(t.ema_generator(), c, "ema");
    for (nn::Module* m : std::vector<nn::Module*>{&t.generator(), &t.discriminator(), &t.ema_generator()})
      FUZZ_ASSERT(all_finite(m->flat_parameters()->data()));
  });
  return 0;
}
