// An in-memory data set of random 32x32 gray images in 3 classes, for trainer
// tests on the CPU (tests/test_trainer.cpp) and the GPU
// (tests/cuda/test_cuda_trainer.cpp): no files, deterministic per index;
// the tiny training configuration those tests share; and a folder of PNGs
// for the image-folder data set.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/image.h"
#include "sagan/core/rng.h"
#include "sagan/models/data/dataset.h"
#include "sagan/models/train_config.h"

namespace sagan::testing {

class TinyDataset : public data::Dataset {
 public:
  // Image i is drawn from Rng(i + seed_offset).
  explicit TinyDataset(int64_t n, uint64_t seed_offset = 0) : n_(n), seed_offset_(seed_offset) {}
  std::string name() const override { return "tiny"; }
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 3; }
  int64_t channels() const override { return 1; }
  int64_t height() const override { return 32; }
  int64_t width() const override { return 32; }
  data::Example get(int64_t i) const override {
    check_index(i);
    data::Example e;
    e.image = io::Image(32, 32, 1);
    Rng g(static_cast<uint64_t>(i) + seed_offset_);
    for (auto& p : e.image.pixels) p = static_cast<uint8_t>(g.below(256));
    e.label = i % 3;
    return e;
  }

 private:
  int64_t n_;
  uint64_t seed_offset_;
};

// SAGAN-32 at ch 4 (G 16 wide, D 8 wide: attention needs multiples of 8),
// z 8, batch 4, 4 steps, EMA from step 2 at decay 0.9, on the CPU, seed 7.
inline TrainConfig tiny_config() {
  TrainConfig c;
  c.model.ch = 4;
  c.model.z_dim = 8;
  c.batch_size = 4;
  c.steps = 4;
  c.ema_start = 2;
  c.ema_decay = 0.9;
  c.device = "cpu";
  c.seed = 7;
  return c;
}

// An image folder of 12 random 32x32 RGB PNGs in 2 classes under root/data;
// with `corrupt`, class1's files are not images.
inline std::string write_image_folder(const std::filesystem::path& root, bool corrupt = false) {
  for (int k = 0; k < 2; ++k) {
    std::filesystem::path dir = root / "data" / ("class" + std::to_string(k));
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 6; ++i) {
      const std::filesystem::path file = dir / (std::to_string(i) + ".png");
      if (corrupt && k == 1) {
        io::write_file_atomic(file.string(), "not a PNG at all");
        continue;
      }
      io::Image img(32, 32, 3);
      Rng g(static_cast<uint64_t>(k * 100 + i + 3));
      for (auto& p : img.pixels) p = static_cast<uint8_t>(g.below(256));
      io::write_png(file.string(), img);
    }
  }
  return (root / "data").string();
}

}  // namespace sagan::testing
