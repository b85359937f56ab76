// Attention-map visualisation (models/attention_maps.h): maps captured from
// tiny random G and D are softmax rows (each sums to 1), query pixels map to
// the right row, the heat-map upsampling keeps the peak where it was, and a
// rendered figure row has the promised size, markers and colours.
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "sagan/core/ops.h"
#include "sagan/models/attention_maps.h"

using namespace sagan;
using namespace sagan::viz;

namespace {

SaganConfig tiny(std::vector<int64_t> g_attn = {16}, std::vector<int64_t> d_attn = {16}, bool pooled = true) {
  SaganConfig c;
  c.resolution = 32;
  c.ch = 4;  // G 16 channels, D 8: the smallest widths attention accepts
  c.z_dim = 8;
  c.num_classes = 3;
  c.image_channels = 1;
  c.g_attn_res = g_attn;
  c.d_attn_res = d_attn;
  c.pooled_attention = pooled;
  return c;
}

Tensor labels(int64_t b) {
  std::vector<int64_t> y;
  for (int64_t i = 0; i < b; ++i) y.push_back(i % 3);
  return Tensor::from_vector(y, {b});
}

void require_rows_sum_to_one(const AttentionCapture& cap) {
  for (int64_t b = 0; b < cap.batch; ++b)
    for (int64_t q = 0; q < cap.layer.n(); ++q) {
      std::vector<double> row = cap.row(b, q);
      REQUIRE(static_cast<int64_t>(row.size()) == cap.layer.s());
      double s = std::accumulate(row.begin(), row.end(), 0.0);
      INFO("image " << b << " query " << q);
      REQUIRE(std::abs(s - 1.0) <= 1e-5);
      REQUIRE(*std::min_element(row.begin(), row.end()) >= 0.0);
    }
}

// Softmax of random logits on a k x k grid, with key `peak` made the unique
// maximum.
std::vector<double> peaked_grid(int64_t k, int64_t peak, Rng& gen) {
  std::vector<double> v(static_cast<size_t>(k * k));
  for (double& x : v) x = std::exp(2.0 * gen.normal());
  v[static_cast<size_t>(peak)] = *std::max_element(v.begin(), v.end()) * 1.05;
  double s = std::accumulate(v.begin(), v.end(), 0.0);
  for (double& x : v) x /= s;
  return v;
}

}  // namespace

TEST_CASE("attention maps of a tiny G and D: rows sum to 1, shapes and names match the layer", "[attention_maps]") {
  Rng init(7);
  SaganGenerator g(tiny(), init);
  SaganDiscriminator d(tiny(), init);
  g.eval();
  d.eval();
  // gamma starts at 0, which makes attention a no-op on the output but not
  // on the map; give it weight so G's later layers see it too.
  {
    NoGradGuard ng;
    g.attention_layers()[0]->gamma().fill_(0.5);
  }
  Rng data(11);
  Tensor z = Tensor::randn({3, 8}, data);

  auto gi = attention_layer_infos(g);
  REQUIRE(gi.size() == 1);
  CHECK(gi[0].name == "blocks.2");  // GBlock 8, GBlock 16, attention, GBlock 32
  CHECK(gi[0].resolution == 16);
  CHECK(gi[0].key_side == 8);
  CHECK(g.tensor(gi[0].name + ".gamma").item() == 0.5);  // the name is the layer's state prefix

  Tensor images;
  AttentionCapture cg = capture_attention(g, 0, z, labels(3), &images);
  REQUIRE(images.shape() == Shape{3, 1, 32, 32});
  CHECK(cg.batch == 3);
  CHECK(cg.layer.n() == 256);
  CHECK(cg.layer.s() == 64);
  REQUIRE(cg.map.size() == static_cast<size_t>(3 * 256 * 64));
  require_rows_sum_to_one(cg);
  // The keep flag is switched off again: an ordinary forward keeps no map.
  {
    NoGradGuard ng;
    g.forward(z, labels(3));
  }
  CHECK_FALSE(g.attention_layers()[0]->last_attention_map().defined());

  // In eval mode images are independent: image 1 of the batch has the map it
  // has alone.
  AttentionCapture one = capture_attention(g, 0, z.slice(0, 1, 2), labels(3).slice(0, 1, 2));
  for (int64_t q : {0, 37, 255}) {
    std::vector<double> a = cg.row(1, q), b = one.row(0, q);
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(std::abs(a[i] - b[i]) <= 1e-6);
  }

  auto di = attention_layer_infos(d);
  REQUIRE(di.size() == 1);
  CHECK(di[0].name == "blocks.1");  // after the optimised block 32 -> 16
  CHECK(di[0].resolution == 16);
  AttentionCapture cd = capture_attention(d, 0, images, labels(3));
  CHECK(cd.layer.s() == 64);
  require_rows_sum_to_one(cd);
}

TEST_CASE("attention maps: several layers, unpooled keys, bad layer indices", "[attention_maps]") {
  Rng init(3);
  SaganGenerator g(tiny({8, 16}, {16, 8}), init);
  SaganDiscriminator d(tiny({8, 16}, {16, 8}), init);
  g.eval();
  d.eval();
  auto gi = attention_layer_infos(g);
  REQUIRE(gi.size() == 2);
  CHECK(gi[0].name == "blocks.1");
  CHECK(gi[0].resolution == 8);
  CHECK(gi[1].name == "blocks.3");
  CHECK(gi[1].resolution == 16);
  auto di = attention_layer_infos(d);
  REQUIRE(di.size() == 2);
  CHECK(di[0].resolution == 16);
  CHECK(di[1].resolution == 8);
  CHECK(di[1].name == "blocks.3");  // optimised block, attention, DBlock 16 -> 8, attention

  Rng data(5);
  Tensor z = Tensor::randn({2, 8}, data);
  AttentionCapture c8 = capture_attention(g, 0, z, labels(2));
  CHECK(c8.layer.n() == 64);
  CHECK(c8.layer.s() == 16);
  require_rows_sum_to_one(c8);
  Tensor x = add(mul(Tensor::rand({2, 1, 32, 32}, data), 2.0), -1.0);
  AttentionCapture d8 = capture_attention(d, 1, x, labels(2));
  CHECK(d8.layer.s() == 16);
  require_rows_sum_to_one(d8);

  REQUIRE_THROWS_WITH(capture_attention(g, 2, z, labels(2)),
                      Catch::Contains("capture_attention: layer index 2 is out of range: generator has 2") &&
                          Catch::Contains("1: blocks.3 at 16x16"));
  REQUIRE_THROWS_WITH(capture_attention(d, -1, x, labels(2)), Catch::Contains("layer index -1 is out of range"));
  // A failed forward leaves the keep flag off.
  REQUIRE_THROWS_WITH(capture_attention(d, 0, x.slice(2, 0, 16), labels(2)), Catch::Contains("SaganDiscriminator"));

  SaganGenerator none(tiny({}, {}), init);
  REQUIRE_THROWS_WITH(capture_attention(none, 0, z, labels(2)),
                      Catch::Contains("capture_attention: this generator has no self-attention layer"));

  SaganDiscriminator flat(tiny({16}, {16}, false), init);
  flat.eval();
  AttentionCapture cu = capture_attention(flat, 0, x, labels(2));
  CHECK(cu.layer.key_side == 16);
  CHECK(cu.layer.s() == 256);  // unpooled: every position is a key
  require_rows_sum_to_one(cu);
}

TEST_CASE("attention maps: query pixel to query index", "[attention_maps]") {
  // index = (y*r/R)*r + x*r/R, worked by hand.
  CHECK(query_index({5, 7}, 32, 16) == 3 * 16 + 2);
  CHECK(query_index({5, 7}, 32, 32) == 7 * 32 + 5);
  CHECK(query_index({5, 7}, 32, 8) == 1 * 8 + 1);
  CHECK(query_index({31, 31}, 32, 16) == 255);
  CHECK(query_index({0, 31}, 32, 16) == 15 * 16);  // row-major: y picks the row
  CHECK(query_index({31, 0}, 32, 16) == 15);
  // Every pixel of a layer cell's (R/r) x (R/r) block maps to that cell.
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 32; ++x) REQUIRE(query_index({x, y}, 32, 8) == (y / 4) * 8 + x / 4);
  REQUIRE_THROWS_WITH(query_index({32, 0}, 32, 16),
                      Catch::Contains("query_index: query (32, 0) is outside the 32x32 image"));
  REQUIRE_THROWS_WITH(query_index({0, -1}, 32, 16), Catch::Contains("outside the 32x32 image"));
  REQUIRE_THROWS_WITH(query_index({0, 0}, 16, 32),
                      Catch::Contains("layer resolution 32 must be in [1, image resolution 16]"));

  CHECK(parse_queries("3,4;10, 20 ;", 32) == std::vector<QueryPoint>{{3, 4}, {10, 20}});
  REQUIRE_THROWS_WITH(parse_queries("3,4;40,2", 32), Catch::Contains("--queries: (40, 2) is outside the 32x32 image"));
  REQUIRE_THROWS_WITH(parse_queries("3;4", 32), Catch::Contains("--queries: '3' is not x,y"));
  REQUIRE_THROWS_WITH(parse_queries("a,b", 32), Catch::Contains("--queries: 'a,b' is not x,y"));
  REQUIRE_THROWS_WITH(parse_queries("1.5,2", 32), Catch::Contains("'1.5,2' is not x,y"));
  REQUIRE_THROWS_WITH(parse_queries(";", 32), Catch::Contains("--queries: no points"));
}

TEST_CASE("attention maps: heat-map upsampling keeps the peak and samples keys exactly", "[attention_maps]") {
  // 2x2 -> 4x4 by hand: f = 2, output o samples key (o - 1) / 2, clamped:
  // 0, 0, 0.5, 1 along each axis.
  std::vector<double> up = upsample_heat({0, 1, 2, 3}, 2, 2, 4, 4);
  std::vector<double> want{0, 0, 0.5, 1, 0, 0, 0.5, 1, 1, 1, 1.5, 2, 2, 2, 2.5, 3};
  for (size_t i = 0; i < want.size(); ++i) REQUIRE(up[i] == Approx(want[i]).margin(1e-15));
  // f = 1 is the identity.
  std::vector<double> id{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  CHECK(upsample_heat(id, 3, 3, 3, 3) == id);

  Rng gen(21);
  for (int64_t k : {2, 4, 8}) {
    for (int64_t out : {k * 2, k * 4, int64_t{128}}) {
      for (int trial = 0; trial < 4; ++trial) {
        int64_t peak = static_cast<int64_t>(gen.below(static_cast<uint64_t>(k * k)));
        std::vector<double> grid = peaked_grid(k, peak, gen);
        std::vector<double> h = upsample_heat(grid, k, k, out, out);
        const int64_t f = out / k;
        auto am = std::max_element(h.begin(), h.end()) - h.begin();
        int64_t oy = am / out, ox = am % out;
        INFO("k " << k << " out " << out << " peak " << peak << " argmax pixel " << oy << "," << ox);
        REQUIRE((oy / f) * k + ox / f == peak);  // inside the peak key's f x f block
        REQUIRE(h[static_cast<size_t>(am)] == grid[static_cast<size_t>(peak)]);
        // Every key is sampled exactly at the middle of its block.
        for (int64_t i = 0; i < k * k; ++i)
          REQUIRE(h[static_cast<size_t>(((i / k) * f + f / 2) * out + (i % k) * f + f / 2)] ==
                  grid[static_cast<size_t>(i)]);
      }
    }
  }
  REQUIRE_THROWS_WITH(upsample_heat(id, 3, 3, 4, 4),
                      Catch::Contains("upsample_heat: output 4x4 must be a positive multiple of the key grid 3x3"));
  REQUIRE_THROWS_WITH(upsample_heat(id, 2, 2, 4, 4),
                      Catch::Contains("upsample_heat: 9 values do not fill a 2x2 key grid"));

  CHECK(normalize_heat({1, 2, 3}, HeatScale::MinMax) == std::vector<double>{0, 0.5, 1});
  CHECK(normalize_heat({1, 2, 4}, HeatScale::Max) == std::vector<double>{0.25, 0.5, 1});
  CHECK(normalize_heat({0.25, 0.25}, HeatScale::MinMax) == std::vector<double>{0, 0});
  CHECK(normalize_heat({0.25, 0.25}, HeatScale::Max) == std::vector<double>{1, 1});

  CHECK(jet(0.0) == std::array<uint8_t, 3>{0, 0, 128});
  CHECK(jet(0.5) == std::array<uint8_t, 3>{128, 255, 128});
  CHECK(jet(1.0) == std::array<uint8_t, 3>{128, 0, 0});
  CHECK(jet(0.25) == std::array<uint8_t, 3>{0, 128, 255});
  CHECK(jet(2.0) == jet(1.0));
}

TEST_CASE("attention maps: a rendered row has the expected size, markers and heat colours", "[attention_maps]") {
  io::Image img(32, 32, 1, 100);
  std::vector<QueryPoint> qs{{3, 5}, {20, 30}};
  // Query 0 attends to key (2, 6) of the 8x8 grid, query 1 to key (7, 0).
  std::vector<std::vector<double>> rows(2, std::vector<double>(64, 0.0));
  rows[0][2 * 8 + 6] = 1.0;
  rows[1][7 * 8 + 0] = 1.0;
  RenderOptions ro;  // scale 0: 4 (128-pixel panels), padding 4
  CHECK(panel_scale(32, ro) == 4);
  CHECK(panel_scale(128, ro) == 1);
  io::Image row = render_attention_row(img, qs, rows, 8, ro);
  const int64_t P = 128, pad = 4;
  REQUIRE(row.channels == 3);
  REQUIRE(row.height == P + 2 * pad);
  REQUIRE(row.width == 3 * (P + pad) + pad);
  auto px = [&](int64_t panel, int64_t y, int64_t x) {
    int64_t oy = pad + y, ox = pad + panel * (P + pad) + x;
    return std::array<uint8_t, 3>{row.at(oy, ox, 0), row.at(oy, ox, 1), row.at(oy, ox, 2)};
  };
  // Panel 0: the image with both markers; panel 1 + i: query i's marker.
  for (int64_t i = 0; i < 2; ++i) {
    QueryPoint c = marker_center(qs[static_cast<size_t>(i)], 4);
    CHECK(px(0, c.y, c.x) == marker_color(i));
    CHECK(px(1 + i, c.y, c.x) == marker_color(i));
    CHECK(px(2 - i, c.y, c.x) != marker_color(i));  // each heat panel shows its own query only
  }
  CHECK(marker_center({3, 5}, 4) == QueryPoint{14, 22});
  CHECK(px(0, 100, 100) == std::array<uint8_t, 3>{100, 100, 100});  // gray image, away from markers
  // The attended key at full heat: 0.4 * 100 + 0.6 * jet(1) = (117, 40, 40),
  // at the middle of its 16x16 block; a far key at zero heat is jet(0).
  CHECK(px(1, 2 * 16 + 8, 6 * 16 + 8) == std::array<uint8_t, 3>{117, 40, 40});
  CHECK(px(2, 7 * 16 + 8, 0 * 16 + 8) == std::array<uint8_t, 3>{117, 40, 40});
  CHECK(px(1, 120, 8) == std::array<uint8_t, 3>{40, 40, 117});
  CHECK(row.at(0, 0, 0) == 255);  // padding is the background

  io::Image two = stack_rows({row, row}, pad, 255);
  CHECK(two.height == 2 * (P + pad) + pad);
  CHECK(two.width == row.width);

  REQUIRE_THROWS_WITH(render_attention_row(img, qs, {rows[0]}, 8, ro),
                      Catch::Contains("render_attention_row: 2 queries but 1 map rows"));
  REQUIRE_THROWS_WITH(render_attention_row(img, {{32, 1}, {0, 0}}, rows, 8, ro),
                      Catch::Contains("render_attention_row: query (32, 1) is outside the 32x32 image"));
  REQUIRE_THROWS_WITH(render_attention_row(img, qs, rows, 5, ro), Catch::Contains("key grid 5x5 does not divide"));
  REQUIRE_THROWS_WITH(render_attention_row(img, qs, {rows[0], std::vector<double>(16, 0.0)}, 8, ro),
                      Catch::Contains("map row 1 has 16 weights, the 8x8 key grid needs 64"));
  REQUIRE_THROWS_WITH(stack_rows({row, img}, pad, 255), Catch::Contains("stack_rows: row 1 is 32x32x1"));
}

TEST_CASE("attention maps: automatic queries land on the foreground, spread out", "[attention_maps]") {
  // A bright 12x8 garment on black: queries inside it, distinct, the first
  // nearest its centroid, the second as far from it as the garment allows.
  io::Image img(32, 32, 1, 0);
  for (int64_t y = 10; y < 22; ++y)
    for (int64_t x = 12; x < 20; ++x) img.at(y, x, 0) = 200;
  std::vector<QueryPoint> q = auto_queries(img, 5);
  REQUIRE(q.size() == 5);
  for (size_t i = 0; i < q.size(); ++i) {
    CHECK(q[i].x >= 12);
    CHECK(q[i].x < 20);
    CHECK(q[i].y >= 10);
    CHECK(q[i].y < 22);
    for (size_t j = 0; j < i; ++j) CHECK_FALSE(q[i] == q[j]);
  }
  CHECK(q[0] == QueryPoint{15, 15});  // centroid (15.5, 15.5), first of the tied nearest
  CHECK(q[1] == QueryPoint{19, 21});  // the farthest garment corner
  // A blank image has no foreground: the whole image is used.
  std::vector<QueryPoint> blank = auto_queries(io::Image(32, 32, 3, 40), 2);
  CHECK(blank[1] == QueryPoint{31, 31});
  REQUIRE_THROWS_WITH(auto_queries(img, 0), Catch::Contains("auto_queries: n = 0 must be in [1, 1024]"));

  // Model input and back: an image at the model's resolution survives exactly.
  Tensor t = image_tensor(img, 1, 32);
  REQUIRE(t.shape() == Shape{1, 1, 32, 32});
  CHECK(t.to_vector()[0] == -1.0);
  io::Image back = tensor_image(t, 0);
  CHECK(back.pixels == img.pixels);
  // RGB files become the model's channels and size.
  CHECK(image_tensor(io::Image(40, 64, 3, 255), 1, 32).shape() == Shape{1, 1, 32, 32});
}
