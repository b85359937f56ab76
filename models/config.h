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
#include <vector>

#include "core/error.h"

namespace sagan {

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

  // Throws sagan::Error naming the option and the offending value.
  void validate() const {
    SAGAN_CHECK(resolution >= 32 && (resolution & (resolution - 1)) == 0,
                "SaganConfig: resolution must be a power of two >= 32, got {}", resolution);
    SAGAN_CHECK(ch > 0, "SaganConfig: ch must be positive, got {}", ch);
    SAGAN_CHECK(z_dim > 0, "SaganConfig: z_dim must be positive, got {}", z_dim);
    SAGAN_CHECK(num_classes >= 0, "SaganConfig: num_classes must be >= 0 (0 = unconditional), got {}", num_classes);
    SAGAN_CHECK(image_channels > 0, "SaganConfig: image_channels must be positive, got {}", image_channels);
    std::vector<int64_t> gres = g_block_res(), gw = g_widths();
    std::vector<int64_t> ga = g_attention(), da = d_attention();
    for (int64_t r : ga) {
      auto it = std::find(gres.begin(), gres.end(), r);
      SAGAN_CHECK(it != gres.end(),
                  "SaganConfig: g_attn_res {} is not a resolution the generator's blocks produce ({})", r,
                  fmt::join(gres, ", "));
      SAGAN_CHECK(std::count(ga.begin(), ga.end(), r) == 1, "SaganConfig: g_attn_res lists {} twice", r);
      check_attn_channels("g_attn_res", r, gw[static_cast<size_t>(it - gres.begin()) + 1]);
    }
    std::vector<DBlockSpec> db = d_blocks();
    std::vector<int64_t> dres;
    for (auto& b : db) dres.push_back(b.out_res);
    for (int64_t r : da) {
      auto it = std::find(dres.begin(), dres.end(), r);
      SAGAN_CHECK(it != dres.end(),
                  "SaganConfig: d_attn_res {} is not a resolution the discriminator's blocks produce ({})", r,
                  fmt::join(dres, ", "));
      SAGAN_CHECK(std::count(da.begin(), da.end(), r) == 1, "SaganConfig: d_attn_res lists {} twice", r);
      check_attn_channels("d_attn_res", r, db[static_cast<size_t>(it - dres.begin())].out);
    }
  }

 private:
  int64_t log2_res() const {
    int64_t n = 0;
    while ((int64_t{1} << n) < resolution) ++n;
    return n;
  }
  void check_attn_channels(const char* option, int64_t res, int64_t channels) const {
    SAGAN_CHECK(channels % 8 == 0,
                "SaganConfig: {} {}: self-attention needs channels divisible by 8, the block has {} (ch = {})", option,
                res, channels, ch);
    if (pooled_attention) SAGAN_CHECK(res >= 2, "SaganConfig: {} {}: pooled attention needs at least 2x2", option, res);
  }
};

}  // namespace sagan
