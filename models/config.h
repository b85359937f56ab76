// SaganConfig: the architecture of a SAGAN generator / discriminator pair,
// mirrored by Config in tests/golden/sagan_reference.py.
//
// Widths are a multiplier per network times per-resolution factors, as in
// StudioGAN (g_conv_dim, d_conv_dim) and BigGAN-PyTorch (G_ch, D_ch): the
// generator's multiplier is g_ch, the discriminator's d_ch; `ch` sets both
// (g_ch / d_ch = 0 follow ch), so configs and checkpoints from before g_ch /
// d_ch existed, which hold only ch, keep their meaning.
// Resolution 32 is the SNGAN / StudioGAN CIFAR ResNet: G linear z ->
// 4x4x4g_ch, three up blocks 4g_ch -> 4g_ch; D optimised block image ->
// 2d_ch (32 -> 16), a down block (16 -> 8), two blocks without pooling, all
// 2d_ch.
// Resolution R >= 64 is BigGAN-style: G widths (x g_ch) 16, 8, 4, 2, 1 with
// more 16s in front for each doubling beyond 64 (128: 16,16,8,4,2,1), one up
// block per doubling from 4x4; D widths (x d_ch) the reverse (128:
// 1,2,4,8,16,16), pooling in every block but the last, which stays at 4x4.
// Attention goes after the (first) block whose output has that resolution;
// the default is R/2 capped at 64 (32 -> 16, 64 -> 32, 128 -> 64).
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sagan/core/error.h"

namespace sagan {

class Tensor;

// Class labels given to a conditional network (int64, 1-d, checked before)
// lie in [0, classes): `who` leads the message and `what` names the labels
// ("SaganGenerator: labels[1] = 9 is not a class of the model (0 to 1)").
// Only labels in host memory are
// read; on a GPU the embedding kernels stop on a bad one, since reading them
// would wait for the device (core/sync_free.h).
void check_class_labels(const char* who, const char* what, const Tensor& y, int64_t classes);

// An invalid setting: the key it is read under and what is wrong with its
// value. Messages put the place it was given in front ("my.toml: model.ch",
// "--ch").
struct ConfigProblem {
  std::string key;
  std::string text;
};

struct SaganConfig {
  int64_t resolution = 32;  // power of two >= 32
  int64_t ch = 64;          // width multiplier of both networks, unless g_ch / d_ch say otherwise
  int64_t g_ch = 0;         // the generator's width multiplier; 0: ch
  int64_t d_ch = 0;         // the discriminator's; 0: ch
  int64_t z_dim = 128;
  int64_t num_classes = 10;  // 0: unconditional
  // Resolutions that get a self-attention block; nullopt: the default for the
  // resolution; an empty list: no attention.
  std::optional<std::vector<int64_t>> g_attn_res, d_attn_res;
  bool pooled_attention = true;  // official form; false: the paper's text
  int64_t image_channels = 3;

  struct DBlockSpec {
    int64_t in, out;
    bool down;
    int64_t out_res;
  };

  static int64_t default_attn_res(int64_t resolution) { return std::min<int64_t>(resolution / 2, 64); }
  std::vector<int64_t> g_attention() const {
    return g_attn_res.value_or(std::vector<int64_t>{default_attn_res(resolution)});
  }
  std::vector<int64_t> d_attention() const {
    return d_attn_res.value_or(std::vector<int64_t>{default_attn_res(resolution)});
  }

  // The multipliers in force: g_ch / d_ch, or ch where they are 0.
  int64_t resolved_g_ch() const { return g_ch != 0 ? g_ch : ch; }
  int64_t resolved_d_ch() const { return d_ch != 0 ? d_ch : ch; }

  // Channels at 4x4 and after each up block (size = up blocks + 1).
  std::vector<int64_t> g_widths() const {
    std::vector<int64_t> w = g_factors();
    for (int64_t& m : w) m *= resolved_g_ch();
    return w;
  }
  // Output resolution of each generator up block: 8, 16, ..., resolution.
  std::vector<int64_t> g_block_res() const {
    std::vector<int64_t> out;
    for (int64_t r = 8; r <= resolution; r *= 2) out.push_back(r);
    return out;
  }
  std::vector<DBlockSpec> d_blocks() const {
    std::vector<DBlockSpec> out;
    int64_t res = resolution;
    auto push = [&](int64_t in, int64_t o, bool down) {
      res = down ? res / 2 : res;
      out.push_back({in, o, down, res});
    };
    if (resolution == 32) {
      int64_t c = 2 * resolved_d_ch();
      push(image_channels, c, true);
      push(c, c, true);
      push(c, c, false);
      push(c, c, false);
    } else {
      std::vector<int64_t> w = g_factors();
      std::reverse(w.begin(), w.end());
      for (int64_t& m : w) m *= resolved_d_ch();
      push(image_channels, w[0], true);
      for (size_t i = 1; i < w.size(); ++i) push(w[i - 1], w[i], i + 1 < w.size());
    }
    return out;
  }

  // The first invalid setting, or nullopt: `key` is the field's name
  // ("ch", "g_attn_res"), `text` what is wrong with it ("must be positive,
  // got -1"). The one place SaganConfig is checked: validate() throws it,
  // TrainConfig::validate reports it under the config file's key or option.
  std::optional<ConfigProblem> problem() const;

  // Throws sagan::Error "SaganConfig: <key>: <what is wrong>".
  void validate() const {
    if (auto p = problem()) SAGAN_FAIL("SaganConfig: {}: {}", p->key, p->text);
  }

 private:
  // G's width factors at 4x4 and after each up block; D uses them reversed
  // (R >= 64).
  std::vector<int64_t> g_factors() const {
    if (resolution == 32) return {4, 4, 4, 4};
    std::vector<int64_t> f;
    const int64_t blocks = log2_res() - 2;
    for (int64_t i = 0; i < blocks + 1 - 5; ++i) f.push_back(16);
    for (int64_t m : {16, 8, 4, 2, 1}) f.push_back(m);
    return f;
  }
  int64_t log2_res() const {
    int64_t n = 0;
    while ((int64_t{1} << n) < resolution) ++n;
    return n;
  }
  // Widths whose weights no machine holds (and whose products would
  // overflow int64 further on), or nullopt.
  std::optional<ConfigProblem> size_problem() const;
  // `width` names the multiplier behind `channels` in the message ("ch = 3").
  std::optional<std::string> attn_channels_problem(int64_t res, int64_t channels, const std::string& width) const;
};

}  // namespace sagan
