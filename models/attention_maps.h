// Attention-map visualisation (tools/sagan-attention): capture the (B, N, S)
// map of one self-attention layer of a SAGAN G or D, pick query points in
// image pixels, and render the paper's figure: the image with the query
// points marked, then one heat map per query (its row of the map on the key
// grid, upsampled to the image, blended over it with a jet colormap).
//
// Coordinates: x is the column, y the row, both in image pixels at the
// model's resolution R. A layer at resolution r sees pixel (x, y) as query
// index (y*r/R)*r + x*r/R (integer division), the row-major position its
// (B, C, r, r) -> (B, r*r, C) flattening gives; keys live on the pooled grid
// (r/2 x r/2) for the official block, on r x r without pooling.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sagan/core/io/image.h"
#include "sagan/models/discriminator.h"
#include "sagan/models/generator.h"

namespace sagan::viz {

struct QueryPoint {
  int64_t x = 0, y = 0;  // column, row in image pixels
  bool operator==(const QueryPoint& o) const { return x == o.x && y == o.y; }
};

struct AttentionLayerInfo {
  int64_t index = 0;       // position in attention_layers()
  std::string name;        // module name in the state dict, e.g. "blocks.3"
  int64_t resolution = 0;  // r: the layer runs on r x r features
  int64_t key_side = 0;    // keys on a key_side x key_side grid
  bool pooled = true;
  int64_t n() const { return resolution * resolution; }
  int64_t s() const { return key_side * key_side; }
};

// The attention layers of a model in forward order, named as in its state.
std::vector<AttentionLayerInfo> attention_layer_infos(const SaganGenerator& g);
std::vector<AttentionLayerInfo> attention_layer_infos(const SaganDiscriminator& d);

// One forward's map of one layer, on the host.
struct AttentionCapture {
  AttentionLayerInfo layer;
  int64_t batch = 0;
  std::vector<double> map;  // (batch, N, S) row-major; each row sums to 1
  // Row `query` (in [0, N)) of image b: S weights over the key grid.
  std::vector<double> row(int64_t b, int64_t query) const;
};

// Runs g (z (B, z_dim), y (B) or undefined) without gradients with the map of
// layer `layer` kept; the images (B, C, R, R) go to *images when given. The
// keep flag is switched off again afterwards.
AttentionCapture capture_attention(SaganGenerator& g, int64_t layer, const Tensor& z, const Tensor& y,
                                   Tensor* images = nullptr);
// Runs d on images x (B, C, R, R) in [-1, 1] with labels y (D's attention
// does not depend on y; the projection comes after it).
AttentionCapture capture_attention(SaganDiscriminator& d, int64_t layer, const Tensor& x, const Tensor& y);

// Query index of pixel p for a layer at resolution layer_res in an image of
// image_res (both square); throws when p is outside the image.
int64_t query_index(const QueryPoint& p, int64_t image_res, int64_t layer_res);

// "x,y;x,y;..." -> points; throws naming --queries and the bad entry, or the
// point outside the image_res x image_res image.
std::vector<QueryPoint> parse_queries(const std::string& text, int64_t image_res);

// n query points spread over the image by farthest-point sampling, starting
// from the foreground pixel nearest the foreground centroid. Foreground:
// pixels whose luma differs from the median border luma by more than 10% of
// the range (all pixels when fewer than n qualify), so Fashion-MNIST queries
// land on the garment. Deterministic.
std::vector<QueryPoint> auto_queries(const io::Image& image, int64_t n);

// grid (kh, kw) -> (h, w), h and w multiples of kh and kw. Bilinear, with key
// (i, j) sampled exactly at output pixel (i*f + f/2, j*f + f/2), f = h/kh, so
// the peak survives: the maximum is attained there and everywhere else is a
// convex combination of neighbouring keys (a unique argmax stays unique and
// inside its key's f x f block).
std::vector<double> upsample_heat(const std::vector<double>& grid, int64_t kh, int64_t kw, int64_t h, int64_t w);

// Values -> [0, 1] for display. minmax: (v - min) / (max - min) (a constant
// map gives 0); max: v / max (absolute scale: a near-uniform map stays hot).
enum class HeatScale { MinMax, Max };
std::vector<double> normalize_heat(const std::vector<double>& v, HeatScale scale);

// Jet by hand: dark blue (t = 0), cyan, yellow, dark red (t = 1).
std::array<uint8_t, 3> jet(double t);

// Marker colour of query i (cycles through a fixed palette).
std::array<uint8_t, 3> marker_color(int64_t i);

struct RenderOptions {
  int64_t scale = 0;   // panel = image_res * scale pixels; 0: smallest giving >= 128
  double alpha = 0.6;  // heat-map opacity over the image
  HeatScale heat_scale = HeatScale::MinMax;
  int64_t padding = 4;  // between and around panels
  uint8_t background = 255;
};

// The display scale options.scale resolves to for an image of image_res.
int64_t panel_scale(int64_t image_res, const RenderOptions& options);

// Marker centre of p on a panel of scale s (the middle of p's s x s block).
inline QueryPoint marker_center(const QueryPoint& p, int64_t s) { return {p.x * s + s / 2, p.y * s + s / 2}; }

// One figure row: image (R x R, 1 or 3 channels) with every query marked,
// then for query i the heat map of rows[i] (key_side^2 weights) blended over
// the image with query i's marker on it. RGB, height R*s + 2*padding, width
// (1 + queries) * (R*s + padding) + padding.
io::Image render_attention_row(const io::Image& image, const std::vector<QueryPoint>& queries,
                               const std::vector<std::vector<double>>& rows, int64_t key_side,
                               const RenderOptions& options = {});

// Rows of equal width stacked top to bottom (shared padding not doubled).
io::Image stack_rows(const std::vector<io::Image>& rows, int64_t padding, uint8_t background);

// Image b of images (B, C, H, W) in [-1, 1] as 8-bit (make_image_grid's
// rounding).
io::Image tensor_image(const Tensor& images, int64_t b);
// An 8-bit image as the model's input (1, channels, res, res) in [-1, 1]:
// channels converted, centre-cropped to a square, resized to res.
Tensor image_tensor(const io::Image& image, int64_t channels, int64_t res);

}  // namespace sagan::viz
