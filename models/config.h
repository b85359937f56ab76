// SaganConfig: the architecture of a SAGAN generator / discriminator pair,
// mirrored by Config in tests/golden/sagan_reference.py.
//
// Resolution 32 is the SNGAN / StudioGAN CIFAR ResNet: G linear z -> 4x4x4ch,
// three up blocks 4ch -> 4ch; D optimised block image -> 2ch (32 -> 16), a
// down block (16 -> 8), two blocks without pooling, all 2ch.
// Resolution R >= 64 is BigGAN-style: G widths (x ch) 16, 8, 4, 2, 1 with
// more 16s in front for each doubling beyond 64 (128: 16,16,8,4,2,1), one up
// block per doubling from 4x4; D widths the reverse (128: 1,2,4,8,16,16),
// pooling in every block but the last, which stays at 4x4.
// Attention goes after the (first) block whose output has that resolution;
// the default is R/2 capped at 64 (32 -> 16, 64 -> 32, 128 -> 64).
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace sagan {

// An invalid setting: the key it is read under and what is wrong with its
// value. Messages put the place it was given in front ("my.toml: model.ch",
// "--ch").
struct ConfigProblem {
  std::string key;
  std::string text;
};

struct SaganConfig {
  int64_t resolution = 32;  // power of two >= 32
  int64_t ch = 64;
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

  // Channels at 4x4 and after each up block (size = up blocks + 1).
  std::vector<int64_t> g_widths() const {
    std::vector<int64_t> mult;
    if (resolution == 32) {
      mult = {4, 4, 4, 4};
    } else {
      int64_t blocks = log2_res() - 2;
      for (int64_t i = 0; i < blocks + 1 - 5; ++i) mult.push_back(16);
      for (int64_t m : {16, 8, 4, 2, 1}) mult.push_back(m);
    }
    for (int64_t& m : mult) m *= ch;
    return mult;
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
      int64_t c = 2 * ch;
      push(image_channels, c, true);
      push(c, c, true);
      push(c, c, false);
      push(c, c, false);
    } else {
      std::vector<int64_t> w = g_widths();
      std::reverse(w.begin(), w.end());
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
  int64_t log2_res() const {
    int64_t n = 0;
    while ((int64_t{1} << n) < resolution) ++n;
    return n;
  }
  std::optional<std::string> attn_channels_problem(int64_t res, int64_t channels) const;
};

}  // namespace sagan
