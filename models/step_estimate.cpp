#include "sagan/models/step_estimate.h"

#include <chrono>

#include "sagan/core/ops.h"
#include "sagan/layers/diffaugment.h"
#include "sagan/models/discriminator.h"
#include "sagan/models/generator.h"

namespace sagan {

double estimate_iteration_seconds(const TrainConfig& cfg, Device device) {
  const SaganConfig& m = cfg.model;
  Rng gen(0x57E9);  // its own stream: nothing of the run's is drawn
  SaganGenerator g(m, gen);
  SaganDiscriminator d(m, gen);
  g.to(device);
  d.to(device);
  const nn::DiffAugmentPolicy aug = nn::DiffAugmentPolicy::parse(cfg.diffaug);
  auto labels = [&](int64_t n) {
    return m.num_classes > 0 ? Tensor::from_vector(std::vector<int64_t>(static_cast<size_t>(n), 0), {n}, device)
                             : Tensor();
  };
  // The trainer's iteration without the optimiser; the losses' item() waits
  // for the device.
  auto iteration = [&](int64_t B) {
    for (int64_t i = 0; i < cfg.n_dis; ++i) {
      Tensor fake;
      {
        NoGradGuard ng;
        g.power_iterate_all();
        fake = g.forward(Tensor::randn({B, m.z_dim}, gen, DType::F32, device), labels(B));
      }
      Tensor real = Tensor::rand({B, m.image_channels, m.resolution, m.resolution}, gen, DType::F32, device);
      d.power_iterate_all();
      Tensor out = d.forward(nn::diffaugment(concat({real, fake}, 0), aug, gen), labels(2 * B));
      Tensor loss = mean(relu(rsub(1.0, out)));
      loss.backward();
      loss.item();
    }
    for (Tensor p : d.parameters()) p.set_requires_grad(false);
    g.power_iterate_all();
    Tensor fake = g.forward(Tensor::randn({B, m.z_dim}, gen, DType::F32, device), labels(B));
    d.power_iterate_all();
    Tensor loss = neg(mean(d.forward(nn::diffaugment(fake, aug, gen), labels(B))));
    loss.backward();
    loss.item();
    for (Tensor p : d.parameters()) p.set_requires_grad(true);
  };
  // Once untimed at the real batch size: on a GPU the first call chooses the
  // convolutions' algorithms and fills the allocator's cache; on the CPU it
  // touches the activations' fresh memory, which made the estimate of the
  // cpu preset's step 1.3-1.5x the steps' real time.
  iteration(cfg.batch_size);
  const auto t0 = std::chrono::steady_clock::now();
  iteration(cfg.batch_size);
  // --accumulate: its passes run one after another, each an iteration's work.
  return static_cast<double>(cfg.accumulate) *
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace sagan
