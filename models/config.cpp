#include "sagan/models/config.h"

#include "sagan/core/tensor.h"

namespace sagan {

void check_class_labels(const char* who, const char* what, const Tensor& y, int64_t classes) {
  if (!y.device().is_cpu()) return;
  const Tensor c = y.contiguous();
  const int64_t* p = static_cast<const int64_t*>(c.raw_data());
  for (int64_t i = 0; i < c.numel(); ++i)
    SAGAN_CHECK(p[i] >= 0 && p[i] < classes, "{}: {}[{}] = {} is not a class of the model (0 to {})", who, what, i,
                p[i], classes - 1);
}

std::optional<ConfigProblem> SaganConfig::problem() const {
  auto bad = [](const char* key, std::string text) { return std::optional<ConfigProblem>{{key, std::move(text)}}; };
  if (resolution < 32 || (resolution & (resolution - 1)) != 0)
    return bad("resolution", fmt::format("must be a power of two >= 32, got {}", resolution));
  if (ch <= 0) return bad("ch", fmt::format("must be positive, got {}", ch));
  if (g_ch < 0) return bad("g_ch", fmt::format("must be positive (0: ch), got {}", g_ch));
  if (d_ch < 0) return bad("d_ch", fmt::format("must be positive (0: ch), got {}", d_ch));
  if (z_dim <= 0) return bad("z_dim", fmt::format("must be positive, got {}", z_dim));
  if (num_classes < 0) return bad("num_classes", fmt::format("must be >= 0 (0 = unconditional), got {}", num_classes));
  if (image_channels <= 0) return bad("image_channels", fmt::format("must be positive, got {}", image_channels));
  if (auto p = size_problem()) return p;
  // The multiplier behind each network's widths, as messages name it.
  const std::string g_width = g_ch != 0 ? fmt::format("g_ch = {}", g_ch) : fmt::format("ch = {}", ch);
  const std::string d_width = d_ch != 0 ? fmt::format("d_ch = {}", d_ch) : fmt::format("ch = {}", ch);
  std::vector<int64_t> gres = g_block_res(), gw = g_widths();
  std::vector<int64_t> ga = g_attention(), da = d_attention();
  for (int64_t r : ga) {
    auto it = std::find(gres.begin(), gres.end(), r);
    if (it == gres.end())
      return bad("g_attn_res",
                 fmt::format("{} is not a resolution the generator's blocks produce ({})", r, fmt::join(gres, ", ")));
    if (std::count(ga.begin(), ga.end(), r) != 1) return bad("g_attn_res", fmt::format("lists {} twice", r));
    if (auto p = attn_channels_problem(r, gw[static_cast<size_t>(it - gres.begin()) + 1], g_width))
      return bad("g_attn_res", *p);
  }
  std::vector<DBlockSpec> db = d_blocks();
  std::vector<int64_t> dres;
  for (auto& b : db) dres.push_back(b.out_res);
  for (int64_t r : da) {
    auto it = std::find(dres.begin(), dres.end(), r);
    if (it == dres.end()) {
      std::vector<int64_t> once = dres;  // the last blocks keep their resolution: each named once
      once.erase(std::unique(once.begin(), once.end()), once.end());
      return bad("d_attn_res", fmt::format("{} is not a resolution the discriminator's blocks produce ({})", r,
                                           fmt::join(once, ", ")));
    }
    if (std::count(da.begin(), da.end(), r) != 1) return bad("d_attn_res", fmt::format("lists {} twice", r));
    if (auto p = attn_channels_problem(r, db[static_cast<size_t>(it - dres.begin())].out, d_width))
      return bad("d_attn_res", *p);
  }
  return std::nullopt;
}

std::optional<ConfigProblem> SaganConfig::size_problem() const {
  // Below 2^40 no width product of the networks (16 x the multiplier, a 3x3
  // convolution's 9 x width^2 values) overflows int64; the weights' bound
  // decides first in practice.
  constexpr int64_t kMaxMultiplier = int64_t{1} << 40;
  for (auto [key, value] : {std::pair<const char*, int64_t>{"ch", ch}, {"g_ch", g_ch}, {"d_ch", d_ch}})
    if (value > kMaxMultiplier) return ConfigProblem{key, fmt::format("{} is beyond any machine", value)};
  // The weights of the 3x3 and 1x1 convolutions and G's input linear layer
  // (the bulk of every network here), in double: no overflow.
  auto block = [](double in, double out) { return 9 * in * out + 9 * out * out + in * out; };
  std::vector<int64_t> gw = g_widths();
  double g_weights = static_cast<double>(z_dim) * 16 * static_cast<double>(gw[0]);
  for (size_t i = 1; i < gw.size(); ++i) g_weights += block(static_cast<double>(gw[i - 1]), static_cast<double>(gw[i]));
  double d_weights = 0;
  for (const DBlockSpec& b : d_blocks()) d_weights += block(static_cast<double>(b.in), static_cast<double>(b.out));
  // float32 weights alone, before gradients, Adam's two moments and the EMA
  // copy: 1 TiB is more than any GPU or most hosts hold.
  constexpr double kMaxWeightBytes = 1099511627776.0;
  const double bytes = 4 * (g_weights + d_weights);
  if (bytes <= kMaxWeightBytes) return std::nullopt;
  const char* key = g_weights >= d_weights ? (g_ch != 0 ? "g_ch" : "ch") : (d_ch != 0 ? "d_ch" : "ch");
  const int64_t value = g_weights >= d_weights ? resolved_g_ch() : resolved_d_ch();
  return ConfigProblem{key, fmt::format("{} gives the networks about {:.3g} weights, {:.0f} GiB in float32 before "
                                        "gradients and Adam's state: beyond any machine (at most 1 TiB of weights)",
                                        value, g_weights + d_weights, bytes / 1073741824.0)};
}

std::optional<std::string> SaganConfig::attn_channels_problem(int64_t res, int64_t channels,
                                                              const std::string& width) const {
  if (channels % 8 != 0)
    return fmt::format("{}: self-attention needs channels divisible by 8, the block has {} ({})", res, channels, width);
  if (pooled_attention && res < 2) return fmt::format("{}: pooled attention needs at least 2x2", res);
  return std::nullopt;
}

}  // namespace sagan
