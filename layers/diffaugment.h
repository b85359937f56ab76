// DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for
// Data-Efficient GAN Training"): random colour, translation and cutout that
// the discriminator sees on real AND fake images, differentiable with respect
// to the images so G's gradient passes through. Semantics of the official
// DiffAugment_pytorch.py (data-efficient-gans, the StyleGAN2-pytorch copy):
//   color:       x += b,                     b ~ U[-0.5, 0.5)   brightness
//                x = (x - mean_c) * s + mean_c, s ~ U[0, 2)      saturation (mean over channels, per pixel)
//                x = (x - mean) * k + mean,    k ~ U[0.5, 1.5)  contrast (mean over C, H, W)
//   translation: shift by (tx, ty), each integer ~ U{-r..r}, r = int(H/8 + 0.5)
//                (W for ty); pixels shifted in from outside are 0
//   cutout:      zero a (int(H/2 + 0.5)) x (int(W/2 + 0.5)) rectangle centred
//                at (ox, oy), ox ~ U{0 .. H - (size_h odd)} (clamped at the border)
// Every parameter is drawn PER SAMPLE; the official BigGAN-CIFAR trainer
// augments the concatenated [fake; real] batch in one call, so one call on
// the trainer's [real; fake] batch is the same distribution.
//
// Random parameters come from an Rng on the CPU (so CPU and CUDA runs see the
// same augmentations) and are kept apart from applying them, so tests can
// inject fixed draws (gradient checks, the golden script
// tests/golden/make_diffaugment_goldens.py). Applying is composed from engine
// ops: add/mul/mean for colour, an index_select gather over the flattened
// image with one appended zero for translation, a constant mask for cutout.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sagan/core/rng.h"
#include "sagan/core/tensor.h"

namespace sagan::nn {

struct DiffAugmentPolicy {
  enum class Op { color, translation, cutout };
  std::vector<Op> ops;  // applied (and drawn) in this order, as the official code
  bool any() const { return !ops.empty(); }
  bool has(Op op) const;
  // "color,translation,cutout": any of the three, each at most once, in the
  // order to apply them; "" or "none" is no augmentation. Errors name
  // `option` and the offending word.
  static DiffAugmentPolicy parse(const std::string& text, const std::string& option = "--diffaug");
  std::string str() const;  // "color,translation,cutout" form, "none" when empty
};

// Per-sample random parameters for a batch of B images of H x W; vectors of
// the policies that are off stay empty.
struct DiffAugmentParams {
  std::vector<double> brightness;           // b in [-0.5, 0.5)
  std::vector<double> saturation;           // s in [0, 2)
  std::vector<double> contrast;             // k in [0.5, 1.5)
  std::vector<int64_t> shift_h, shift_w;    // in [-r_h, r_h], [-r_w, r_w]
  std::vector<int64_t> cutout_h, cutout_w;  // cutout centres (offsets) as drawn
};

// Translation radius r and cutout size for an image side of n pixels.
int64_t diffaugment_shift(int64_t n);
int64_t diffaugment_cutout_size(int64_t n);

// Draws B samples' parameters from gen, op by op in the policy's order as the
// official code does: color = brightness, saturation, contrast (B uniforms
// each); translation = shift_h, shift_w; cutout = cutout_h, cutout_w (B
// integers each).
DiffAugmentParams draw_diffaugment(const DiffAugmentPolicy& policy, int64_t batch, int64_t height, int64_t width,
                                   Rng& gen);

// params made into what applying them reads on the device, for images of
// `shape` (B, C, H, W) in `dtype` on `device`: per-sample colour factors
// (B, 1, 1, 1), the translation's gather index into the flattened images
// with one zero appended (C*H*W*B, int64), the cutout mask (B, 1, H, W).
// Tensors of policies that are off stay undefined. Checks the params.
struct DiffAugmentTensors {
  Tensor brightness, saturation, contrast, gather, cutout_mask;
};
DiffAugmentTensors diffaugment_tensors(const DiffAugmentPolicy& policy, const DiffAugmentParams& params,
                                       const Shape& shape, DType dtype, Device device);

// x (B, C, H, W), float32 or float64, any device -> augmented, same shape.
// Deterministic given params; differentiable with respect to x.
Tensor diffaugment(const Tensor& x, const DiffAugmentPolicy& policy, const DiffAugmentParams& params);
// The same from tensors made by diffaugment_tensors for x's shape, dtype and
// device: device work only (no host copies), so a CUDA graph can record it
// and replay it with new tensors copied into the same buffers.
Tensor diffaugment(const Tensor& x, const DiffAugmentPolicy& policy, const DiffAugmentTensors& t);
// Draws from gen, then applies. A policy with nothing on returns x itself.
Tensor diffaugment(const Tensor& x, const DiffAugmentPolicy& policy, Rng& gen);

}  // namespace sagan::nn
