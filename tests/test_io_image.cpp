// Images: PNG round trips, decoder normalisation of PNG variants, JPEG
// fixtures, corrupt-file errors, sample grids, cropping and resampling
// against PyTorch/numpy golden values (tests/golden/io_resize.py).
#include <zlib.h>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/image.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

namespace {
io::Image pattern(int64_t h, int64_t w, int64_t c) {
  io::Image img(h, w, c);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k) img.at(y, x, k) = static_cast<uint8_t>((y * 7 + x * 13 + k * 5) % 17 * 15);
  return img;
}

std::string fixture(const std::string& name) { return std::string(SAGAN_TEST_DATA_DIR) + "/io/" + name; }
}  // namespace

TEST_CASE("PNG round trip of gray and RGB images with odd sizes", "[io][io_image]") {
  TempDir dir;
  for (int64_t c : {1, 3}) {
    io::Image img = pattern(5, 7, c);
    std::string p = dir / ("img" + std::to_string(c) + ".png");
    io::write_png(p, img);
    io::Image back = io::read_image(p);
    CHECK(back.height == 5);
    CHECK(back.width == 7);
    CHECK(back.channels == c);
    CHECK(back.pixels == img.pixels);
  }
  REQUIRE_THROWS_WITH(io::write_png(dir / "bad.png", io::Image(2, 2, 2)), Catch::Contains("need 1 or 3 channels"));
  io::Image wrong = pattern(2, 2, 3);
  wrong.pixels.pop_back();
  REQUIRE_THROWS_WITH(io::write_png(dir / "bad.png", wrong), Catch::Contains("11 pixel bytes for a 2x2x3 image"));
}

TEST_CASE("PNG decoder normalises palette, 16-bit, alpha and interlaced files", "[io][io_image]") {
  // Written by tests/golden/io_fixtures.py.
  io::Image pal = io::read_image(fixture("palette.png"));  // palette red, green, blue / blue, green, red
  CHECK((pal.height == 2 && pal.width == 3 && pal.channels == 3));
  CHECK(pal.pixels == std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0});

  io::Image rgba = io::read_image(fixture("rgba16.png"));  // 16-bit RGBA: high bytes kept, alpha dropped
  CHECK((rgba.height == 2 && rgba.width == 3 && rgba.channels == 3));
  for (int64_t y = 0; y < 2; ++y)
    for (int64_t x = 0; x < 3; ++x) {
      CHECK(rgba.at(y, x, 0) == (y * 3 + x) * 40);
      CHECK(rgba.at(y, x, 1) == 255);
      CHECK(rgba.at(y, x, 2) == 7);
    }

  io::Image la = io::read_image(fixture("gray_alpha.png"));
  CHECK((la.height == 2 && la.width == 2 && la.channels == 1));
  CHECK(la.pixels == std::vector<uint8_t>{10, 20, 30, 40});

  io::Image inter = io::read_image(fixture("interlaced.png"));  // Adam7, pixel (y, x) = (50y, 40x, 200-10y-x)
  CHECK((inter.height == 3 && inter.width == 5 && inter.channels == 3));
  bool all = true;
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 5; ++x)
      all = all && inter.at(y, x, 0) == 50 * y && inter.at(y, x, 1) == 40 * x && inter.at(y, x, 2) == 200 - 10 * y - x;
  CHECK(all);
}

TEST_CASE("JPEG decoding of gray, RGB and CMYK files", "[io][io_image]") {
  io::Image gray = io::read_image(fixture("gray.jpg"));  // quality 100 of (8y + x) * 4
  CHECK((gray.height == 8 && gray.width == 8 && gray.channels == 1));
  int worst = 0;
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) worst = std::max(worst, std::abs(gray.at(y, x, 0) - int((y * 8 + x) * 4)));
  CHECK(worst <= 2);

  io::Image rgb = io::read_image(fixture("rgb444.jpg"));  // (16x, 32y, 128), 4:4:4, quality 100
  CHECK((rgb.height == 8 && rgb.width == 16 && rgb.channels == 3));
  worst = 0;
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 16; ++x) {
      int want[3] = {int(x * 16), int(y * 32), 128};
      for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(rgb.at(y, x, c) - want[c]));
    }
  CHECK(worst <= 4);

  io::Image cmyk = io::read_image(fixture("cmyk.jpg"));  // pure red in CMYK
  CHECK((cmyk.height == 4 && cmyk.width == 4 && cmyk.channels == 3));
  CHECK(cmyk.at(2, 1, 0) >= 250);
  CHECK(cmyk.at(2, 1, 1) <= 5);
  CHECK(cmyk.at(2, 1, 2) <= 5);
}

TEST_CASE("a JPEG with junk bytes between markers decodes as the clean file does", "[io][io_image]") {
  // libjpeg warns "2 extraneous bytes before marker 0xda" and decodes every
  // pixel as encoded; some of ImageNet's files are so.
  std::vector<uint8_t> jpg = io::read_file(fixture("rgb444.jpg"));
  size_t sos = 2;
  while (sos + 1 < jpg.size() && !(jpg[sos] == 0xFF && jpg[sos + 1] == 0xDA)) ++sos;
  REQUIRE(sos + 1 < jpg.size());
  std::vector<uint8_t> junk = jpg;
  junk.insert(junk.begin() + static_cast<long>(sos), {0x13, 0x37});
  const io::Image clean = io::decode_jpeg(jpg.data(), jpg.size(), "clean.jpg");
  const io::Image padded = io::decode_jpeg(junk.data(), junk.size(), "junk.jpg");
  CHECK((padded.height == clean.height && padded.width == clean.width && padded.channels == clean.channels));
  CHECK(padded.pixels == clean.pixels);
}

TEST_CASE("corrupt and truncated PNG/JPEG files throw naming the file", "[io][io_image]") {
  TempDir dir;
  std::string good = dir / "good.png";
  io::write_png(good, pattern(16, 16, 3));
  std::vector<uint8_t> png = io::read_file(good);

  std::string cut = dir / "cut.png";
  write_bytes(cut, std::vector<uint8_t>(png.begin(), png.begin() + static_cast<long>(png.size() / 2)));
  REQUIRE_THROWS_WITH(io::read_image(cut),
                      Catch::Contains(cut) && Catch::Contains("corrupt PNG") && Catch::Contains("truncated"));

  // Cut just before IEND: all pixels present, the end of the file missing.
  std::string no_end = dir / "no_end.png";
  write_bytes(no_end, std::vector<uint8_t>(png.begin(), png.end() - 12));
  REQUIRE_THROWS_WITH(io::read_image(no_end), Catch::Contains(no_end) && Catch::Contains("corrupt PNG"));

  std::string flipped = dir / "flipped.png";
  std::vector<uint8_t> bad = png;
  bad[bad.size() - 20] ^= 0x5A;  // inside IDAT: its CRC no longer matches
  write_bytes(flipped, bad);
  REQUIRE_THROWS_WITH(io::read_image(flipped), Catch::Contains(flipped) && Catch::Contains("corrupt PNG"));

  std::vector<uint8_t> jpg = io::read_file(fixture("rgb444.jpg"));
  std::string jcut = dir / "cut.jpg";
  write_bytes(jcut, std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2)));
  REQUIRE_THROWS_WITH(io::read_image(jcut),
                      Catch::Contains(jcut) && Catch::Contains("corrupt JPEG") && Catch::Contains("Premature end"));

  std::string jgarbage = dir / "garbage.jpg";
  write_bytes(jgarbage, {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x13, 0x37, 0x00, 0x11});
  REQUIRE_THROWS_WITH(io::read_image(jgarbage), Catch::Contains(jgarbage) && Catch::Contains("corrupt JPEG"));

  std::string text = dir / "text.png";
  io::write_file_atomic(text, std::string("hello, not an image"));
  REQUIRE_THROWS_WITH(io::read_image(text), Catch::Contains(text) && Catch::Contains("not a PNG or JPEG"));
  REQUIRE_THROWS_WITH(io::decode_png(jpg.data(), jpg.size(), "x.png"), Catch::Contains("x.png: not a PNG file"));
  REQUIRE_THROWS_WITH(io::decode_jpeg(png.data(), png.size(), "x.jpg"), Catch::Contains("x.jpg: not a JPEG file"));
  REQUIRE_THROWS_WITH(io::read_image(dir / "absent.png"),
                      Catch::Contains("absent.png") && Catch::Contains("No such file"));
}

TEST_CASE("save_image_grid lays out images like torchvision", "[io][io_image]") {
  TempDir dir;
  // 5 RGB 4x3 images; image b has the constant value v_b in channel 0,
  // -v_b in channel 1 and 0 in channel 2.
  const std::vector<double> vals = {-1.0, -0.5, 0.0, 0.5, 1.0};
  std::vector<double> data;
  for (double v : vals)
    for (double ch : {v, -v, 0.0})
      for (int i = 0; i < 12; ++i) data.push_back(ch);
  data[0] = -7.0;  // out of range: clamped to black
  data[1] = 7.0;   // clamped to white
  Tensor images = Tensor::from_vector(data, {5, 3, 4, 3});
  std::string p = dir / "grid.png";
  io::save_image_grid(p, images, /*nrow=*/2, /*padding=*/1, /*pad_value=*/9);
  io::Image g = io::read_image(p);
  // ceil(5 / 2) = 3 rows of (4 + 1) plus 1; 2 columns of (3 + 1) plus 1.
  REQUIRE((g.height == 16 && g.width == 9 && g.channels == 3));
  auto expect = [](double v) { return static_cast<int>(std::floor(std::clamp((v + 1) / 2, 0.0, 1.0) * 255 + 0.5)); };
  CHECK(expect(0.0) == 128);
  for (int b = 0; b < 5; ++b) {
    int oy = (b / 2) * 5 + 1, ox = (b % 2) * 4 + 1;
    CHECK(g.at(oy + 2, ox + 1, 0) == expect(vals[b]));
    CHECK(g.at(oy + 3, ox + 2, 1) == expect(-vals[b]));
    CHECK(g.at(oy + 1, ox, 2) == 128);
  }
  CHECK(g.at(1, 1, 0) == 0);    // -7 clamped
  CHECK(g.at(1, 2, 0) == 255);  // 7 clamped
  CHECK(g.at(0, 0, 0) == 9);    // outer padding
  CHECK(g.at(3, 4, 1) == 9);    // between columns
  CHECK(g.at(12, 6, 2) == 9);   // the empty sixth cell
  // Gray images stay one channel.
  io::Image gray = io::make_image_grid(Tensor::zeros({3, 1, 2, 2}, DType::F64), 8, 0);
  CHECK((gray.height == 2 && gray.width == 6 && gray.channels == 1));
  REQUIRE_THROWS_WITH(io::make_image_grid(Tensor::zeros({3, 2, 2, 2}), 8, 2),
                      Catch::Contains("make_image_grid") && Catch::Contains("[3, 2, 2, 2]"));
  REQUIRE_THROWS_WITH(io::make_image_grid(Tensor::zeros({4, 4}), 8, 2), Catch::Contains("[4, 4]"));
  REQUIRE_THROWS_WITH(io::make_image_grid(Tensor::zeros({1, 1, 2, 2}), 0, 2), Catch::Contains("nrow 0"));
}

TEST_CASE("center_crop and channel conversion", "[io][io_image]") {
  io::Image img = pattern(5, 8, 3);
  io::Image c = io::center_crop(img, 3, 4);  // offsets floor(2/2) = 1, floor(4/2) = 2
  REQUIRE((c.height == 3 && c.width == 4 && c.channels == 3));
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 4; ++x)
      for (int64_t k = 0; k < 3; ++k) CHECK(c.at(y, x, k) == img.at(y + 1, x + 2, k));
  io::Image sq = io::center_crop_square(img);
  CHECK((sq.height == 5 && sq.width == 5 && sq.at(0, 0, 0) == img.at(0, 1, 0)));
  REQUIRE_THROWS_WITH(io::center_crop(img, 6, 2), Catch::Contains("center_crop: window 6x2 does not fit in a 5x8"));

  io::Image rgb(1, 2, 3);
  rgb.pixels = {255, 0, 0, 10, 200, 30};
  io::Image gray = io::convert_channels(rgb, 1);
  // PIL "L": (19595 R + 38470 G + 7471 B + 2^15) >> 16
  CHECK(gray.pixels == std::vector<uint8_t>{76, (10 * 19595 + 200 * 38470 + 30 * 7471 + 32768) >> 16});
  CHECK(io::convert_channels(gray, 3).pixels ==
        std::vector<uint8_t>{76, 76, 76, gray.pixels[1], gray.pixels[1], gray.pixels[1]});
  REQUIRE_THROWS_WITH(io::convert_channels(rgb, 2), Catch::Contains("cannot convert 3 channels to 2"));
}

TEST_CASE("resize matches PyTorch bilinear/area/nearest-exact and exact area averaging", "[io][io_image]") {
  std::ifstream in(fixture("resize_golden.txt"));
  REQUIRE(in.good());
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    std::istringstream head(line);
    std::string tag, name;
    int64_t h, w, c, oh, ow;
    head >> tag >> name >> h >> w >> c >> oh >> ow;
    REQUIRE(tag == "case");
    REQUIRE(std::getline(in, line));
    std::istringstream vals(line);
    std::vector<double> want;
    for (double v; vals >> v;) want.push_back(v);
    REQUIRE(want.size() == static_cast<size_t>(oh * ow * c));
    const io::ImageF in = io::to_float(pattern(h, w, c));
    io::ImageF out = name.rfind("nearest", 0) == 0 ? io::resize_nearest(in, oh, ow) : io::resize(in, oh, ow);
    REQUIRE((out.height == oh && out.width == ow && out.channels == c));
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(out.pixels[i] - want[i]));
    INFO(name << " worst abs error " << worst);
    CHECK(worst < 1e-4);
    ++cases;
  }
  CHECK(cases == 7);
}

TEST_CASE("fit_square: crop to a square, area down, and bilinear, nearest or black padding up", "[io][io_image]") {
  const io::Image img = pattern(3, 5, 1);  // centre square: columns 1..3
  const io::ImageF sq = io::to_float(io::center_crop_square(img));
  CHECK(io::fit_square(img, 3, io::Upscale::pad).pixels == sq.pixels);  // already the size: untouched
  // Larger: area-averaged down whatever the mode.
  for (io::Upscale u : {io::Upscale::bilinear, io::Upscale::nearest, io::Upscale::pad})
    CHECK(io::fit_square(pattern(8, 8, 1), 4, u).pixels == io::resize(io::to_float(pattern(8, 8, 1)), 4, 4).pixels);
  CHECK(io::fit_square(img, 7, io::Upscale::bilinear).pixels == io::resize(sq, 7, 7).pixels);
  CHECK(io::fit_square(img, 7, io::Upscale::nearest).pixels == io::resize_nearest(sq, 7, 7).pixels);
  // pad: the square centred (offset floor((7 - 3) / 2) = 2), black around.
  io::ImageF p = io::fit_square(img, 7, io::Upscale::pad);
  REQUIRE((p.height == 7 && p.width == 7 && p.channels == 1));
  for (int64_t y = 0; y < 7; ++y)
    for (int64_t x = 0; x < 7; ++x) {
      INFO(y << "," << x);
      const bool inside = y >= 2 && y < 5 && x >= 2 && x < 5;
      CHECK(p.pixels[static_cast<size_t>(y * 7 + x)] ==
            (inside ? sq.pixels[static_cast<size_t>((y - 2) * 3 + x - 2)] : 0.0f));
    }
  // 28 -> 32 (Fashion-MNIST): 2 pixels of black on every side; odd margins put the extra one after.
  io::ImageF f = io::fit_square(io::Image(28, 28, 1, 255), 32, io::Upscale::pad);
  CHECK((f.pixels[2 * 32 + 1] == 0.0f && f.pixels[2 * 32 + 2] == 255.0f && f.pixels[29 * 32 + 29] == 255.0f &&
         f.pixels[29 * 32 + 30] == 0.0f));
  // 1x2 on 2x5: offsets floor(1 / 2) = 0 rows, floor(3 / 2) = 1 column; 3 channels of the fill around.
  io::ImageF odd = io::pad_center(io::ImageF{1, 2, 3, std::vector<float>(6, 9.0f)}, 2, 5, -1.0f);
  std::vector<float> want(30, -1.0f);
  std::fill(want.begin() + 3, want.begin() + 9, 9.0f);
  CHECK(odd.pixels == want);
  // 2 -> 3 nearest, half-pixel centres: sources floor(0.5 * 2/3) = 0, floor(1.5 * 2/3) = 1, floor(2.5 * 2/3) = 1.
  CHECK(io::resize_nearest(io::ImageF{1, 2, 1, {4.0f, 8.0f}}, 1, 3).pixels == std::vector<float>{4.0f, 8.0f, 8.0f});
  REQUIRE_THROWS_WITH(io::pad_center(sq, 2, 9), Catch::Contains("pad_center: a 3x3 image does not fit in 2x9"));
  CHECK(io::parse_upscale("nearest") == io::Upscale::nearest);
  REQUIRE_THROWS_WITH(io::parse_upscale("bicubic", "--resize"),
                      "--resize: 'bicubic' is not one of bilinear, nearest, pad");
}

TEST_CASE("read_image_channels reads the channels decoding would give from the header", "[io][io_image]") {
  for (const char* name :
       {"gray.jpg", "gray_alpha.png", "palette.png", "rgba16.png", "interlaced.png", "cmyk.jpg", "rgb444.jpg"}) {
    INFO(name);
    CHECK(io::read_image_channels(fixture(name)) == io::read_image(fixture(name)).channels);
  }
  CHECK(io::read_image_channels(fixture("gray.jpg")) == 1);
  CHECK(io::read_image_channels(fixture("gray_alpha.png")) == 1);
  CHECK(io::read_image_channels(fixture("palette.png")) == 3);
  TempDir dir;
  io::write_file_atomic(dir / "bad.png", std::string("\x89PNG\r\n\x1a\n truncated"));
  REQUIRE_THROWS_WITH(io::read_image_channels(dir / "bad.png"), Catch::Contains(dir / "bad.png"));
  io::write_file_atomic(dir / "text.png", std::string("hello"));
  REQUIRE_THROWS_WITH(io::read_image_channels(dir / "text.png"), Catch::Contains("not a PNG or JPEG file"));
}

TEST_CASE("read_image_channels finds a header beyond its 64 KiB first read", "[io][io_image]") {
  TempDir dir;
  const std::vector<uint8_t> jpeg = io::read_file(fixture("gray.jpg"));
  std::vector<uint8_t> padded_jpeg(jpeg.begin(), jpeg.begin() + 2);  // SOI, then two full comment segments
  for (int k = 0; k < 2; ++k) {
    padded_jpeg.insert(padded_jpeg.end(), {0xFF, 0xFE, 0xFF, 0xFF});  // COM, length 65535
    padded_jpeg.insert(padded_jpeg.end(), 65533, static_cast<uint8_t>('x'));
  }
  padded_jpeg.insert(padded_jpeg.end(), jpeg.begin() + 2, jpeg.end());
  io::write_file_atomic(dir / "comments.jpg", padded_jpeg.data(), padded_jpeg.size());
  CHECK(io::read_image_channels(dir / "comments.jpg") == 1);
  CHECK(io::read_image(dir / "comments.jpg").channels == 1);
  // Cut before the frame header: the whole file is read, and its error is the file's.
  io::write_file_atomic(dir / "cut.jpg", padded_jpeg.data(), 100000);
  REQUIRE_THROWS_WITH(io::read_image_channels(dir / "cut.jpg"),
                      Catch::Contains(dir / "cut.jpg") && Catch::Contains("corrupt JPEG"));

  // A PNG with a 100 kB text chunk between IHDR (bytes 8-32) and the pixels.
  io::write_png(dir / "small.png", pattern(5, 7, 3));
  const std::vector<uint8_t> png = io::read_file(dir / "small.png");
  std::vector<uint8_t> chunk = {0, 0x01, 0x86, 0xA0, 't', 'E', 'X', 't', 'C', 'o', 'm', 'm', 'e', 'n', 't', 0};
  chunk.resize(8 + 100000, static_cast<uint8_t>('y'));
  const uLong crc = crc32(0, chunk.data() + 4, static_cast<uInt>(chunk.size() - 4));
  for (int shift : {24, 16, 8, 0}) chunk.push_back(static_cast<uint8_t>(crc >> shift));
  std::vector<uint8_t> padded_png(png.begin(), png.begin() + 33);
  padded_png.insert(padded_png.end(), chunk.begin(), chunk.end());
  padded_png.insert(padded_png.end(), png.begin() + 33, png.end());
  io::write_file_atomic(dir / "text.png", padded_png.data(), padded_png.size());
  CHECK(io::read_image_channels(dir / "text.png") == 3);
  CHECK(io::read_image(dir / "text.png").channels == 3);

  CHECK(io::read_file(dir / "text.png", 10) == std::vector<uint8_t>(png.begin(), png.begin() + 10));
}

TEST_CASE("resize by hand: identity, constant images, fractional area", "[io][io_image]") {
  io::Image img = pattern(4, 6, 3);
  CHECK(io::resize(img, 4, 6).pixels == img.pixels);
  io::ImageF flat{3, 5, 1, std::vector<float>(15, 42.0f)};
  for (auto [h, w] : {std::pair<int64_t, int64_t>{7, 2}, {1, 1}, {3, 11}}) {
    io::ImageF r = io::resize(flat, h, w);
    for (float v : r.pixels) CHECK(v == Approx(42.0f));
  }
  // 3 -> 2 by area: out0 = (x0 + x1 / 2) / 1.5, out1 = (x1 / 2 + x2) / 1.5.
  io::ImageF row{1, 3, 1, {3.0f, 6.0f, 12.0f}};
  io::ImageF r = io::resize(row, 1, 2);
  CHECK(r.pixels[0] == Approx((3.0 + 3.0) / 1.5));
  CHECK(r.pixels[1] == Approx((3.0 + 12.0) / 1.5));
  // 2 -> 4 bilinear, half-pixel centers: sources -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  io::ImageF up = io::resize(io::ImageF{1, 2, 1, {0.0f, 8.0f}}, 1, 4);
  CHECK(up.pixels == std::vector<float>{0.0f, 2.0f, 6.0f, 8.0f});
  REQUIRE_THROWS_WITH(io::resize(img, 0, 3), Catch::Contains("resize: target size 0x3"));
  // uint8 results round to nearest.
  io::Image u = io::resize(io::Image(1, 2, 1, 0), 1, 2);
  CHECK(u.pixels == std::vector<uint8_t>{0, 0});
  io::ImageF half{1, 1, 1, {127.5f}};
  CHECK(io::to_uint8(half).pixels[0] == 128);
}

namespace {
// A PNG file from its chunks (type, data), signature and CRCs added.
std::vector<uint8_t> png_file(const std::vector<std::pair<std::string, std::vector<uint8_t>>>& chunks) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto put32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  for (const auto& [type, data] : chunks) {
    put32(static_cast<uint32_t>(data.size()));
    std::vector<uint8_t> body(type.begin(), type.end());
    body.insert(body.end(), data.begin(), data.end());
    out.insert(out.end(), body.begin(), body.end());
    put32(static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
  }
  return out;
}
std::vector<uint8_t> ihdr(uint32_t w, uint32_t h, uint8_t depth, uint8_t color) {
  std::vector<uint8_t> d;
  for (uint32_t v : {w, h})
    for (int i = 3; i >= 0; --i) d.push_back(static_cast<uint8_t>(v >> (8 * i)));
  d.insert(d.end(), {depth, color, 0, 0, 0});
  return d;
}
std::vector<uint8_t> zlib_compress(const std::vector<uint8_t>& raw) {
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> out(n);
  REQUIRE(compress(out.data(), &n, raw.data(), static_cast<uLong>(raw.size())) == Z_OK);
  out.resize(n);
  return out;
}
}  // namespace

TEST_CASE("a palette PNG with transparency (tRNS) decodes to RGB, the transparency dropped", "[io][io_image]") {
  // 3x2, palette red, green, blue; tRNS makes red opaque, green half, blue clear.
  std::vector<uint8_t> rows = {0, 0, 1, 2, 0, 2, 1, 0};  // filter byte 0 + three indices, per row
  std::vector<uint8_t> png = png_file({{"IHDR", ihdr(3, 2, 8, 3)},
                                       {"PLTE", {255, 0, 0, 0, 255, 0, 0, 0, 255}},
                                       {"tRNS", {255, 128, 0}},
                                       {"IDAT", zlib_compress(rows)},
                                       {"IEND", {}}});
  io::Image img = io::decode_png(png.data(), png.size(), "trns.png");
  CHECK((img.height == 2 && img.width == 3 && img.channels == 3));
  CHECK(img.pixels == std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0});
}

TEST_CASE("a PNG header declaring more pixels than the file can hold is refused before decoding", "[io][io_image]") {
  // 16000 x 16000 gray pixels (256 MB) from 200 bytes of pixel data: deflate
  // cannot expand that much, so the file is truncated or corrupt.
  std::vector<uint8_t> png = png_file(
      {{"IHDR", ihdr(16000, 16000, 8, 0)}, {"IDAT", zlib_compress(std::vector<uint8_t>(200, 0))}, {"IEND", {}}});
  REQUIRE_THROWS_WITH(io::decode_png(png.data(), png.size(), "huge.png"),
                      Catch::Contains("huge.png: corrupt PNG") && Catch::Contains("16000x16000") &&
                          Catch::Contains("more than a") && Catch::Contains("file can hold"));
  // The bound is not in the way of a legitimately well-compressed image.
  std::vector<uint8_t> rows;
  for (int y = 0; y < 1000; ++y) rows.insert(rows.end(), 1001, 0);  // 1000 x 1000, all black
  png = png_file({{"IHDR", ihdr(1000, 1000, 8, 0)}, {"IDAT", zlib_compress(rows)}, {"IEND", {}}});
  CHECK(png.size() < 2000);
  io::Image black = io::decode_png(png.data(), png.size(), "black.png");
  CHECK((black.height == 1000 && black.width == 1000 && black.pixels == std::vector<uint8_t>(1000000, 0)));
}

TEST_CASE("a progressive JPEG whose coefficients would outgrow the decoder's memory is refused before allocating",
          "[io][io_image]") {
  // Both files live in the fuzz corpus: a real progressive RGB file, and the
  // same bytes with its SOF header claiming 20000x13000 pixels, for which
  // libjpeg would allocate 780 MB of coefficients before reading a scan.
  const std::string corpus = std::string(SAGAN_TEST_DATA_DIR) + "/../fuzz/corpus/jpeg/";
  io::Image ok = io::read_image(corpus + "seed_rgb_progressive");
  CHECK((ok.channels == 3 && ok.height > 0 && ok.width > 0));
  const std::string huge = corpus + "regress_progressive_claims_780mb";
  // Refused for its size, not called corrupt: a real photo may be that big.
  REQUIRE_THROWS_WITH(io::read_image(huge), Catch::Contains(huge + ": refused: progressive") &&
                                                !Catch::Contains("corrupt JPEG") && Catch::Contains("20000x13000") &&
                                                Catch::Contains("baseline") && Catch::Contains("coefficient memory"));
}

TEST_CASE("an arithmetic-coded JPEG too large to decode is refused before allocating", "[io][io_image]") {
  // Found by fuzz_jpeg in a CI-style run: 371 bytes of arithmetic-coded CMYK
  // whose SOF claims 38916x5380 pixels. libjpeg decodes every row of it (past
  // the EOI marker it feeds zeros without a warning), so the image grew to
  // 628 MB (599 MiB) row by row.
  const std::string huge = std::string(SAGAN_TEST_DATA_DIR) + "/../fuzz/corpus/jpeg/regress_arithmetic_claims_628mb";
  REQUIRE_THROWS_WITH(io::read_image(huge), Catch::Contains(huge) && Catch::Contains("arithmetic-coded") &&
                                                Catch::Contains("38916x5380") && Catch::Contains("limit of 256 MB"));
}
