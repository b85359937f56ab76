// AdamOptions: Adam's four settings, one struct from the training config
// (TrainConfig::adam_g / adam_d, keys lr_g, lr_d, beta1, beta2, adam_eps)
// through the optimiser (nn::Adam) down to the kernels (AdamHyper adds the
// step count for bias correction).
#pragma once

namespace sagan {

// The defaults are SAGAN's (its generator's TTUR settings: beta1 0, beta2
// 0.9), not the usual Adam's (0.9, 0.999): a program that wants those says
// so, e.g. AdamOptions{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999}.
struct AdamOptions {
  double lr = 1e-4, beta1 = 0.0, beta2 = 0.9, eps = 1e-8;
};

}  // namespace sagan
