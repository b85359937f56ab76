// Trainer: SAGAN's hinge-loss training with TTUR Adam, n_dis D steps per G
// step, an EMA copy of G, optional gradient clipping, and checkpoints that
// restore everything (models, SN vectors, BN statistics, optimisers, EMA,
// step, RNG and data position) so a resumed run continues bit for bit on the
// CPU.
//
// One iteration (step()):
//   repeat n_dis times:
//     real x, y from the loader; z ~ N(0, I), y_fake ~ U{classes}
//     fake = G(z, y_fake) without grad
//     D sees [x; fake] as ONE batch (one SN power iteration per D step)
//     loss_D = mean(relu(1 - D(x))) + mean(relu(1 + D(fake)))
//     Adam step on D
//   z, y_fake fresh; loss_G = -mean(D(G(z, y_fake))) with D's parameters
//   frozen (no weight gradients computed for D); Adam step on G; EMA update.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/rng.h"
#include "layers/adam.h"
#include "models/checkpoint_file.h"
#include "models/data/loader.h"
#include "models/discriminator.h"
#include "models/generator.h"
#include "models/train_config.h"

namespace sagan {

struct StepStats {
  int64_t step = 0;  // generator steps done after this iteration
  double loss_d = 0, loss_g = 0;
  double d_real = 0, d_fake = 0;            // mean D output on real and fake in the last D step
  double grad_norm_d = 0, grad_norm_g = 0;  // before clipping
};

class Trainer {
 public:
  // cfg.model.num_classes / image_channels are taken from the data set
  // (num_classes = 0 when cfg.unconditional). Models start from cfg.seed.
  Trainer(TrainConfig cfg, std::shared_ptr<const data::Dataset> dataset);

  StepStats step();
  int64_t step_count() const { return step_; }
  const TrainConfig& config() const { return cfg_; }
  Device device() const { return device_; }

  SaganGenerator& generator() { return *g_; }
  SaganGenerator& ema_generator() { return *g_ema_; }
  SaganDiscriminator& discriminator() { return *d_; }
  nn::Adam& optimizer_g() { return *opt_g_; }
  nn::Adam& optimizer_d() { return *opt_d_; }

  // Attention gammas by parameter name ("G.blocks.3.gamma", ...).
  std::vector<std::pair<std::string, double>> gammas() const;

  // Images from the EMA generator in eval mode: z (B, z_dim), y (B).
  Tensor sample(const Tensor& z, const Tensor& y);

  // Everything needed to continue, as named tensors (checkpoint contents;
  // the layout is models/checkpoint_file.h's).
  io::NamedTensors checkpoint_tensors() const;
  void save_checkpoint(const std::string& path) const;  // atomic
  // Restores a checkpoint written by save_checkpoint with the same model
  // config; errors name the file and the tensor.
  void load_checkpoint(const std::string& path);

 private:
  Tensor hinge_d(const Tensor& d_out, int64_t n_real, double* d_real, double* d_fake) const;
  // Global gradient norm (before clipping) of one model; clips in place.
  double clip_and_norm(nn::FlatParameters& params) const;
  void set_requires_grad(nn::Module& m, bool on);
  void update_ema();
  TrainingParts parts() const;       // what a checkpoint holds...
  TrainerCounters counters() const;  // ...and the small state besides

  TrainConfig cfg_;
  Device device_;
  std::shared_ptr<const data::Dataset> dataset_;
  std::unique_ptr<data::DataLoader> loader_;
  Rng rng_;  // z and fake labels
  std::unique_ptr<SaganGenerator> g_, g_ema_;
  std::unique_ptr<SaganDiscriminator> d_;
  std::unique_ptr<nn::Adam> opt_g_, opt_d_;
  int64_t step_ = 0;
};

// The device named by a --device string: "auto" is cuda when a GPU is present.
Device resolve_device(const std::string& name);

}  // namespace sagan
