#include "sagan/models/attention_maps.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"

namespace sagan::viz {

namespace {

// Name of each attention layer among the model's top-level children.
template <class Model>
std::vector<AttentionLayerInfo> infos_from(const Model& m, const std::vector<int64_t>& resolutions) {
  std::vector<nn::SelfAttention*> layers = m.attention_layers();
  SAGAN_CHECK(layers.size() == resolutions.size(), "attention_layer_infos: {} attention layers but {} resolutions",
              layers.size(), resolutions.size());
  std::vector<AttentionLayerInfo> out;
  auto children = m.named_children();
  for (size_t i = 0; i < layers.size(); ++i) {
    AttentionLayerInfo info;
    info.index = static_cast<int64_t>(i);
    for (auto& [name, child] : children)
      if (child == static_cast<nn::Module*>(layers[i])) info.name = name;
    info.resolution = resolutions[i];
    info.pooled = layers[i]->pooled();
    info.key_side = info.pooled ? info.resolution / 2 : info.resolution;
    out.push_back(info);
  }
  return out;
}

std::string layer_list(const std::vector<AttentionLayerInfo>& infos) {
  std::string s;
  for (auto& i : infos)
    s += fmt::format("{}{}: {} at {}x{}", s.empty() ? "" : "; ", i.index, i.name, i.resolution, i.resolution);
  return s.empty() ? "none" : s;
}

const AttentionLayerInfo& pick(const std::vector<AttentionLayerInfo>& infos, int64_t layer, const char* net) {
  SAGAN_CHECK(!infos.empty(), "capture_attention: this {} has no self-attention layer", net);
  SAGAN_CHECK(layer >= 0 && layer < static_cast<int64_t>(infos.size()),
              "capture_attention: layer index {} is out of range: {} has {} attention layer(s) ({})", layer, net,
              infos.size(), layer_list(infos));
  return infos[static_cast<size_t>(layer)];
}

// Reads the kept map of `layer` after a forward and checks it has the shape
// the config promises.
AttentionCapture read_map(nn::SelfAttention* layer, const AttentionLayerInfo& info, int64_t batch) {
  Tensor map = layer->last_attention_map();
  layer->set_keep_attention_map(false);
  SAGAN_CHECK(
      map.defined() && map.dim() == 3 && map.size(0) == batch && map.size(1) == info.n() && map.size(2) == info.s(),
      "capture_attention: layer {} ({}) should give a map of shape [{}, {}, {}], got {}", info.index, info.name, batch,
      info.n(), info.s(), map.defined() ? shape_str(map.shape()) : "none");
  AttentionCapture c;
  c.layer = info;
  c.batch = batch;
  c.map = map.to_vector();
  return c;
}

}  // namespace

std::vector<AttentionLayerInfo> attention_layer_infos(const SaganGenerator& g) {
  // G's attention layers follow the up blocks in order of resolution.
  std::vector<int64_t> res, attn = g.config().g_attention();
  for (int64_t r : g.config().g_block_res())
    if (std::find(attn.begin(), attn.end(), r) != attn.end()) res.push_back(r);
  return infos_from(g, res);
}

std::vector<AttentionLayerInfo> attention_layer_infos(const SaganDiscriminator& d) {
  // D's follow the first block of each listed resolution, in block order.
  std::vector<int64_t> res, attn = d.config().d_attention();
  for (const auto& b : d.config().d_blocks()) {
    auto it = std::find(attn.begin(), attn.end(), b.out_res);
    if (it == attn.end()) continue;
    attn.erase(it);
    res.push_back(b.out_res);
  }
  return infos_from(d, res);
}

std::vector<double> AttentionCapture::row(int64_t b, int64_t query) const {
  const int64_t n = layer.n(), s = layer.s();
  SAGAN_CHECK(b >= 0 && b < batch && query >= 0 && query < n,
              "AttentionCapture::row: image {} query {} outside the map [{}, {}, {}]", b, query, batch, n, s);
  auto first = map.begin() + (b * n + query) * s;
  return std::vector<double>(first, first + s);
}

AttentionCapture capture_attention(SaganGenerator& g, int64_t layer, const Tensor& z, const Tensor& y, Tensor* images) {
  auto infos = attention_layer_infos(g);
  const AttentionLayerInfo& info = pick(infos, layer, "generator");
  nn::SelfAttention* a = g.attention_layers()[static_cast<size_t>(layer)];
  a->set_keep_attention_map(true);
  Tensor out;
  try {
    NoGradGuard ng;
    out = g.forward(z, y);
  } catch (...) {
    a->set_keep_attention_map(false);
    throw;
  }
  if (images) *images = out;
  return read_map(a, info, z.size(0));
}

AttentionCapture capture_attention(SaganDiscriminator& d, int64_t layer, const Tensor& x, const Tensor& y) {
  auto infos = attention_layer_infos(d);
  const AttentionLayerInfo& info = pick(infos, layer, "discriminator");
  nn::SelfAttention* a = d.attention_layers()[static_cast<size_t>(layer)];
  a->set_keep_attention_map(true);
  try {
    NoGradGuard ng;
    d.forward(x, y);
  } catch (...) {
    a->set_keep_attention_map(false);
    throw;
  }
  return read_map(a, info, x.size(0));
}

int64_t query_index(const QueryPoint& p, int64_t image_res, int64_t layer_res) {
  SAGAN_CHECK(image_res > 0 && layer_res > 0 && layer_res <= image_res,
              "query_index: layer resolution {} must be in [1, image resolution {}]", layer_res, image_res);
  SAGAN_CHECK(p.x >= 0 && p.x < image_res && p.y >= 0 && p.y < image_res,
              "query_index: query ({}, {}) is outside the {}x{} image", p.x, p.y, image_res, image_res);
  return (p.y * layer_res / image_res) * layer_res + p.x * layer_res / image_res;
}

std::vector<QueryPoint> parse_queries(const std::string& text, int64_t image_res) {
  std::vector<QueryPoint> out;
  std::stringstream ss(text);
  std::string item;
  auto parse_int = [&](const std::string& s, int64_t& v) {
    size_t pos = 0;
    try {
      v = std::stoll(s, &pos);
    } catch (...) {
      return false;
    }
    return pos == s.size();
  };
  while (std::getline(ss, item, ';')) {
    if (item.find_first_not_of(" \t") == std::string::npos) continue;  // "1,2;" is fine
    auto comma = item.find(',');
    QueryPoint p;
    bool ok = comma != std::string::npos;
    if (ok) {
      std::string xs = item.substr(0, comma), ys = item.substr(comma + 1);
      auto trim = [](std::string s) {
        s.erase(0, s.find_first_not_of(" \t"));
        s.erase(s.find_last_not_of(" \t") + 1);
        return s;
      };
      ok = parse_int(trim(xs), p.x) && parse_int(trim(ys), p.y);
    }
    SAGAN_CHECK(ok, "--queries: '{}' is not x,y (integer pixel coordinates)", item);
    SAGAN_CHECK(p.x >= 0 && p.x < image_res && p.y >= 0 && p.y < image_res,
                "--queries: ({}, {}) is outside the {}x{} image (x and y in [0, {}))", p.x, p.y, image_res, image_res,
                image_res);
    out.push_back(p);
  }
  SAGAN_CHECK(!out.empty(), "--queries: no points in '{}' (expected \"x,y;x,y\")", text);
  return out;
}

std::vector<QueryPoint> auto_queries(const io::Image& image, int64_t n) {
  const int64_t H = image.height, W = image.width;
  SAGAN_CHECK(n > 0 && n <= H * W, "auto_queries: n = {} must be in [1, {}] for a {}x{} image", n, H * W, H, W);
  io::Image gray = io::convert_channels(image, 1);
  std::vector<int> border;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      if (y == 0 || x == 0 || y == H - 1 || x == W - 1) border.push_back(gray.at(y, x, 0));
  std::nth_element(border.begin(), border.begin() + static_cast<ptrdiff_t>(border.size() / 2), border.end());
  const int bg = border[border.size() / 2];
  std::vector<QueryPoint> cand;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      if (std::abs(gray.at(y, x, 0) - bg) > 25) cand.push_back({x, y});
  if (static_cast<int64_t>(cand.size()) < n) {
    cand.clear();
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) cand.push_back({x, y});
  }
  double cx = 0, cy = 0;
  for (auto& p : cand) {
    cx += static_cast<double>(p.x);
    cy += static_cast<double>(p.y);
  }
  cx /= static_cast<double>(cand.size());
  cy /= static_cast<double>(cand.size());
  auto d2 = [](double ax, double ay, double bx, double by) { return (ax - bx) * (ax - bx) + (ay - by) * (ay - by); };
  // Strict comparisons keep the first (row-major) candidate on ties.
  size_t first = 0;
  for (size_t i = 1; i < cand.size(); ++i)
    if (d2(cand[i].x, cand[i].y, cx, cy) < d2(cand[first].x, cand[first].y, cx, cy)) first = i;
  std::vector<QueryPoint> out{cand[first]};
  std::vector<double> nearest(cand.size(), std::numeric_limits<double>::infinity());
  while (static_cast<int64_t>(out.size()) < n) {
    const QueryPoint& last = out.back();
    size_t best = 0;
    for (size_t i = 0; i < cand.size(); ++i) {
      nearest[i] = std::min(nearest[i], d2(cand[i].x, cand[i].y, last.x, last.y));
      if (nearest[i] > nearest[best]) best = i;
    }
    out.push_back(cand[best]);
  }
  return out;
}

std::vector<double> upsample_heat(const std::vector<double>& grid, int64_t kh, int64_t kw, int64_t h, int64_t w) {
  SAGAN_CHECK(kh > 0 && kw > 0 && static_cast<int64_t>(grid.size()) == kh * kw,
              "upsample_heat: {} values do not fill a {}x{} key grid", grid.size(), kh, kw);
  SAGAN_CHECK(h > 0 && w > 0 && h % kh == 0 && w % kw == 0,
              "upsample_heat: output {}x{} must be a positive multiple of the key grid {}x{}", h, w, kh, kw);
  // Per axis: output o samples key coordinate (o - f/2) / f, clamped.
  auto taps = [](int64_t k, int64_t m) {
    const int64_t f = m / k;
    std::vector<std::pair<int64_t, double>> t(static_cast<size_t>(m));
    for (int64_t o = 0; o < m; ++o) {
      double src = std::clamp(static_cast<double>(o - f / 2) / static_cast<double>(f), 0.0, static_cast<double>(k - 1));
      int64_t j = std::min<int64_t>(static_cast<int64_t>(src), k - 1);
      t[static_cast<size_t>(o)] = {j, src - static_cast<double>(j)};
    }
    return t;
  };
  auto ty = taps(kh, h), tx = taps(kw, w);
  auto at = [&](int64_t i, int64_t j) { return grid[static_cast<size_t>(i * kw + j)]; };
  std::vector<double> out(static_cast<size_t>(h * w));
  for (int64_t y = 0; y < h; ++y) {
    auto [i0, fy] = ty[static_cast<size_t>(y)];
    int64_t i1 = std::min(i0 + 1, kh - 1);
    for (int64_t x = 0; x < w; ++x) {
      auto [j0, fx] = tx[static_cast<size_t>(x)];
      int64_t j1 = std::min(j0 + 1, kw - 1);
      // Zero weights are skipped so that a sample point is exactly its key.
      double v = (1 - fy) * (1 - fx) * at(i0, j0);
      if (fx > 0) v += (1 - fy) * fx * at(i0, j1);
      if (fy > 0) v += fy * (1 - fx) * at(i1, j0);
      if (fx > 0 && fy > 0) v += fy * fx * at(i1, j1);
      out[static_cast<size_t>(y * w + x)] = v;
    }
  }
  return out;
}

std::vector<double> normalize_heat(const std::vector<double>& v, HeatScale scale) {
  SAGAN_CHECK(!v.empty(), "normalize_heat: empty map");
  auto [lo_it, hi_it] = std::minmax_element(v.begin(), v.end());
  const double lo = scale == HeatScale::MinMax ? *lo_it : 0.0, hi = *hi_it;
  std::vector<double> out(v.size(), 0.0);
  if (!(hi > lo)) return out;
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::clamp((v[i] - lo) / (hi - lo), 0.0, 1.0);
  return out;
}

std::array<uint8_t, 3> jet(double t) {
  t = std::isnan(t) ? 0.0 : std::clamp(t, 0.0, 1.0);
  auto ch = [&](double center) {
    double v = std::clamp(1.5 - std::abs(4.0 * t - center), 0.0, 1.0);
    return static_cast<uint8_t>(std::lround(v * 255.0));
  };
  return {ch(3.0), ch(2.0), ch(1.0)};
}

std::array<uint8_t, 3> marker_color(int64_t i) {
  // Saturated hues that stay apart from each other; the white ring drawn
  // around every marker keeps them visible over jet's reds and blues.
  static const std::array<std::array<uint8_t, 3>, 8> palette{{{255, 0, 255},
                                                              {0, 255, 0},
                                                              {255, 255, 0},
                                                              {0, 255, 255},
                                                              {255, 128, 0},
                                                              {255, 0, 0},
                                                              {0, 0, 255},
                                                              {128, 0, 255}}};
  return palette[static_cast<size_t>(i % static_cast<int64_t>(palette.size()))];
}

int64_t panel_scale(int64_t image_res, const RenderOptions& options) {
  SAGAN_CHECK(image_res > 0 && options.scale >= 0, "panel_scale: image resolution {} and scale {} must be positive",
              image_res, options.scale);
  if (options.scale > 0) return options.scale;
  return std::max<int64_t>(1, (128 + image_res - 1) / image_res);
}

namespace {

io::Image to_rgb_scaled(const io::Image& image, int64_t s) {
  io::Image rgb = io::convert_channels(image, 3);
  io::Image out(image.height * s, image.width * s, 3);
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x)
      for (int64_t c = 0; c < 3; ++c) out.at(y, x, c) = rgb.at(y / s, x / s, c);
  return out;
}

// A filled disc in `color` with a one-pixel white ring, clipped to the panel.
void draw_marker(io::Image& panel, const QueryPoint& c, int64_t radius, const std::array<uint8_t, 3>& color) {
  const int64_t outer = radius + 1;
  for (int64_t dy = -outer; dy <= outer; ++dy)
    for (int64_t dx = -outer; dx <= outer; ++dx) {
      int64_t y = c.y + dy, x = c.x + dx, d2 = dx * dx + dy * dy;
      if (y < 0 || x < 0 || y >= panel.height || x >= panel.width || d2 > outer * outer) continue;
      bool inner = d2 <= radius * radius;
      for (int64_t ch = 0; ch < 3; ++ch) panel.at(y, x, ch) = inner ? color[static_cast<size_t>(ch)] : 255;
    }
}

void paste(io::Image& dst, const io::Image& src, int64_t oy, int64_t ox) {
  for (int64_t y = 0; y < src.height; ++y)
    for (int64_t x = 0; x < src.width; ++x)
      for (int64_t c = 0; c < 3; ++c) dst.at(oy + y, ox + x, c) = src.at(y, x, c);
}

}  // namespace

io::Image render_attention_row(const io::Image& image, const std::vector<QueryPoint>& queries,
                               const std::vector<std::vector<double>>& rows, int64_t key_side,
                               const RenderOptions& options) {
  const int64_t R = image.height;
  SAGAN_CHECK(R > 0 && image.width == R && (image.channels == 1 || image.channels == 3) &&
                  image.pixels.size() == static_cast<size_t>(R * R * image.channels),
              "render_attention_row: image must be square with 1 or 3 channels, got {}x{}x{}", image.height,
              image.width, image.channels);
  SAGAN_CHECK(queries.size() == rows.size() && !queries.empty(),
              "render_attention_row: {} queries but {} map rows (need one row per query, at least one)", queries.size(),
              rows.size());
  SAGAN_CHECK(key_side > 0 && R % key_side == 0, "render_attention_row: key grid {}x{} does not divide the {}x{} image",
              key_side, key_side, R, R);
  SAGAN_CHECK(options.alpha >= 0 && options.alpha <= 1 && options.padding >= 0,
              "render_attention_row: alpha {} must be in [0, 1] and padding {} >= 0", options.alpha, options.padding);
  for (auto& q : queries)
    SAGAN_CHECK(q.x >= 0 && q.x < R && q.y >= 0 && q.y < R,
                "render_attention_row: query ({}, {}) is outside the {}x{} image", q.x, q.y, R, R);
  const int64_t s = panel_scale(R, options), P = R * s, pad = options.padding;
  const int64_t radius = std::max<int64_t>(2, P / 40);
  const int64_t n = static_cast<int64_t>(queries.size());
  io::Image out(P + 2 * pad, (1 + n) * (P + pad) + pad, 3, options.background);
  io::Image base = to_rgb_scaled(image, s);

  io::Image marked = base;
  for (int64_t i = 0; i < n; ++i)
    draw_marker(marked, marker_center(queries[static_cast<size_t>(i)], s), radius, marker_color(i));
  paste(out, marked, pad, pad);

  for (int64_t i = 0; i < n; ++i) {
    const auto& row = rows[static_cast<size_t>(i)];
    SAGAN_CHECK(static_cast<int64_t>(row.size()) == key_side * key_side,
                "render_attention_row: map row {} has {} weights, the {}x{} key grid needs {}", i, row.size(), key_side,
                key_side, key_side * key_side);
    std::vector<double> heat = normalize_heat(upsample_heat(row, key_side, key_side, P, P), options.heat_scale);
    io::Image panel = base;
    for (int64_t p = 0; p < P * P; ++p) {
      auto c = jet(heat[static_cast<size_t>(p)]);
      for (int64_t ch = 0; ch < 3; ++ch) {
        uint8_t& px = panel.pixels[static_cast<size_t>(p * 3 + ch)];
        px = static_cast<uint8_t>(
            std::lround((1 - options.alpha) * px + options.alpha * static_cast<double>(c[static_cast<size_t>(ch)])));
      }
    }
    draw_marker(panel, marker_center(queries[static_cast<size_t>(i)], s), radius, marker_color(i));
    paste(out, panel, pad, (1 + i) * (P + pad) + pad);
  }
  return out;
}

io::Image stack_rows(const std::vector<io::Image>& rows, int64_t padding, uint8_t background) {
  SAGAN_CHECK(!rows.empty(), "stack_rows: no rows");
  const int64_t W = rows[0].width, C = rows[0].channels;
  int64_t H = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    SAGAN_CHECK(rows[i].width == W && rows[i].channels == C && rows[i].height > padding,
                "stack_rows: row {} is {}x{}x{}, row 0 is {}x{}x{} (widths and channels must match)", i, rows[i].height,
                rows[i].width, rows[i].channels, rows[0].height, W, C);
    H += rows[i].height - (i > 0 ? padding : 0);
  }
  io::Image out(H, W, C, background);
  int64_t oy = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t skip = i > 0 ? padding : 0;  // the top padding the previous row's bottom already gives
    auto src = rows[i].pixels.begin() + skip * W * C;
    std::copy(src, rows[i].pixels.end(), out.pixels.begin() + oy * W * C);
    oy += rows[i].height - skip;
  }
  return out;
}

io::Image tensor_image(const Tensor& images, int64_t b) {
  SAGAN_CHECK(images.defined() && images.dim() == 4 && b >= 0 && b < images.size(0),
              "tensor_image: image {} of images {}", b, images.defined() ? shape_str(images.shape()) : "undefined");
  return io::make_image_grid(images.slice(0, b, b + 1), 1, 0);
}

Tensor image_tensor(const io::Image& image, int64_t channels, int64_t res) {
  io::Image img = io::resize(io::center_crop_square(io::convert_channels(image, channels)), res, res);
  std::vector<float> v(static_cast<size_t>(channels * res * res));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < res; ++y)
      for (int64_t x = 0; x < res; ++x)
        v[static_cast<size_t>((c * res + y) * res + x)] = static_cast<float>(img.at(y, x, c)) / 127.5f - 1.0f;
  return Tensor::from_vector(v, {1, channels, res, res});
}

}  // namespace sagan::viz
