// Sample grids, cropping, resampling and channel conversion on Image/ImageF.
#include <algorithm>
#include <cmath>

#include "sagan/core/io/image.h"

namespace sagan::io {

namespace {

void check_image(const char* op, int64_t h, int64_t w, int64_t c, size_t n) {
  SAGAN_CHECK(h > 0 && w > 0 && c > 0 && n == static_cast<size_t>(h * w * c),
              "{}: malformed image {}x{}x{} with {} values", op, h, w, c, n);
}

// One output sample along an axis = sum of weight * input sample.
struct Tap {
  int64_t src;
  double weight;
};

// taps[i] for output i of an axis resampled from n to m samples.
std::vector<std::vector<Tap>> axis_taps(int64_t n, int64_t m) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(m));
  double scale = static_cast<double>(n) / static_cast<double>(m);
  for (int64_t i = 0; i < m; ++i) {
    auto& t = taps[static_cast<size_t>(i)];
    if (m == n) {
      t.push_back({i, 1.0});
    } else if (m < n) {
      // Footprint [lo, hi) in input coordinates; overlap-weighted mean.
      double lo = i * scale, hi = (i + 1) * scale;
      for (int64_t j = static_cast<int64_t>(std::floor(lo)); j < n && j < hi; ++j) {
        double ov = std::min<double>(j + 1, hi) - std::max<double>(j, lo);
        if (ov > 0) t.push_back({j, ov / scale});
      }
    } else {
      double src = std::max(0.0, (i + 0.5) * scale - 0.5);
      int64_t j0 = std::min<int64_t>(static_cast<int64_t>(src), n - 1);
      int64_t j1 = std::min<int64_t>(j0 + 1, n - 1);
      double f = src - static_cast<double>(j0);
      t.push_back({j0, 1.0 - f});
      if (f > 0) t.push_back({j1, f});
    }
  }
  return taps;
}

}  // namespace

ImageF to_float(const Image& img) {
  check_image("to_float", img.height, img.width, img.channels, img.pixels.size());
  ImageF f{img.height, img.width, img.channels, std::vector<float>(img.pixels.begin(), img.pixels.end())};
  return f;
}

Image to_uint8(const ImageF& img) {
  check_image("to_uint8", img.height, img.width, img.channels, img.pixels.size());
  Image out(img.height, img.width, img.channels);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    float v = img.pixels[i];
    out.pixels[i] = std::isnan(v) ? 0 : static_cast<uint8_t>(std::floor(std::clamp(v, 0.0f, 255.0f) + 0.5f));
  }
  return out;
}

ImageF resize(const ImageF& img, int64_t h, int64_t w) {
  check_image("resize", img.height, img.width, img.channels, img.pixels.size());
  SAGAN_CHECK(h > 0 && w > 0, "resize: target size {}x{} must be positive (image {}x{})", h, w, img.height, img.width);
  const int64_t H = img.height, W = img.width, C = img.channels;
  auto tx = axis_taps(W, w), ty = axis_taps(H, h);
  // Rows first (H, W, C) -> (H, w, C), then columns -> (h, w, C).
  std::vector<double> mid(static_cast<size_t>(H * w * C), 0.0);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (const Tap& t : tx[static_cast<size_t>(x)])
        for (int64_t c = 0; c < C; ++c)
          mid[static_cast<size_t>((y * w + x) * C + c)] +=
              t.weight * img.pixels[static_cast<size_t>((y * W + t.src) * C + c)];
  ImageF out{h, w, C, std::vector<float>(static_cast<size_t>(h * w * C))};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0.0;
        for (const Tap& t : ty[static_cast<size_t>(y)])
          acc += t.weight * mid[static_cast<size_t>((t.src * w + x) * C + c)];
        out.pixels[static_cast<size_t>((y * w + x) * C + c)] = static_cast<float>(acc);
      }
  return out;
}

Image resize(const Image& img, int64_t h, int64_t w) {
  if (img.height == h && img.width == w) return img;
  return to_uint8(resize(to_float(img), h, w));
}

ImageF resize_nearest(const ImageF& img, int64_t h, int64_t w) {
  check_image("resize_nearest", img.height, img.width, img.channels, img.pixels.size());
  SAGAN_CHECK(h > 0 && w > 0, "resize_nearest: target size {}x{} must be positive (image {}x{})", h, w, img.height,
              img.width);
  const int64_t H = img.height, W = img.width, C = img.channels;
  // floor((i + 0.5) * n / m) in integers: (2i + 1) * n / (2m).
  auto source = [](int64_t i, int64_t n, int64_t m) { return std::min((2 * i + 1) * n / (2 * m), n - 1); };
  ImageF out{h, w, C, std::vector<float>(static_cast<size_t>(h * w * C))};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const float* src = &img.pixels[static_cast<size_t>((source(y, H, h) * W + source(x, W, w)) * C)];
      std::copy(src, src + C, out.pixels.begin() + (y * w + x) * C);
    }
  return out;
}

ImageF pad_center(const ImageF& img, int64_t h, int64_t w, float fill) {
  check_image("pad_center", img.height, img.width, img.channels, img.pixels.size());
  SAGAN_CHECK(h >= img.height && w >= img.width, "pad_center: a {}x{} image does not fit in {}x{}", img.height,
              img.width, h, w);
  const int64_t y0 = (h - img.height) / 2, x0 = (w - img.width) / 2, C = img.channels;
  ImageF out{h, w, C, std::vector<float>(static_cast<size_t>(h * w * C), fill)};
  for (int64_t y = 0; y < img.height; ++y) {
    auto src = img.pixels.begin() + y * img.width * C;
    std::copy(src, src + img.width * C, out.pixels.begin() + ((y + y0) * w + x0) * C);
  }
  return out;
}

const char* upscale_name(Upscale u) {
  switch (u) {
    case Upscale::bilinear:
      return "bilinear";
    case Upscale::nearest:
      return "nearest";
    case Upscale::pad:
      return "pad";
  }
  return "?";
}

Upscale parse_upscale(const std::string& name, const std::string& option) {
  for (Upscale u : {Upscale::bilinear, Upscale::nearest, Upscale::pad})
    if (name == upscale_name(u)) return u;
  SAGAN_FAIL("{}: '{}' is not one of bilinear, nearest, pad", option, name);
}

ImageF fit_square(const Image& img, int64_t side, Upscale up) {
  SAGAN_CHECK(side > 0, "fit_square: side must be positive, got {}", side);
  const ImageF sq = to_float(center_crop_square(img));
  if (sq.height == side) return sq;
  if (sq.height > side || up == Upscale::bilinear) return resize(sq, side, side);  // area down, bilinear up
  if (up == Upscale::nearest) return resize_nearest(sq, side, side);
  return pad_center(sq, side, side, 0.0f);  // black
}

Image center_crop(const Image& img, int64_t h, int64_t w) {
  check_image("center_crop", img.height, img.width, img.channels, img.pixels.size());
  SAGAN_CHECK(h > 0 && w > 0 && h <= img.height && w <= img.width,
              "center_crop: window {}x{} does not fit in a {}x{} image", h, w, img.height, img.width);
  int64_t y0 = (img.height - h) / 2, x0 = (img.width - w) / 2, C = img.channels;
  Image out(h, w, C);
  for (int64_t y = 0; y < h; ++y) {
    auto src = img.pixels.begin() + ((y + y0) * img.width + x0) * C;
    std::copy(src, src + w * C, out.pixels.begin() + y * w * C);
  }
  return out;
}

Image center_crop_square(const Image& img) {
  int64_t s = std::min(img.height, img.width);
  if (s == img.height && s == img.width) return img;
  return center_crop(img, s, s);
}

Image convert_channels(const Image& img, int64_t channels) {
  check_image("convert_channels", img.height, img.width, img.channels, img.pixels.size());
  SAGAN_CHECK((channels == 1 || channels == 3) && (img.channels == 1 || img.channels == 3),
              "convert_channels: cannot convert {} channels to {} (only 1 and 3 are supported)", img.channels,
              channels);
  if (channels == img.channels) return img;
  Image out(img.height, img.width, channels);
  const int64_t n = img.height * img.width;
  for (int64_t i = 0; i < n; ++i) {
    if (channels == 3) {
      for (int c = 0; c < 3; ++c) out.pixels[static_cast<size_t>(i * 3 + c)] = img.pixels[static_cast<size_t>(i)];
    } else {
      const uint8_t* p = &img.pixels[static_cast<size_t>(i * 3)];
      out.pixels[static_cast<size_t>(i)] =
          static_cast<uint8_t>((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    }
  }
  return out;
}

Image make_image_grid(const Tensor& images, int64_t nrow, int64_t padding, uint8_t pad_value) {
  SAGAN_CHECK(images.defined(), "make_image_grid: images is an undefined tensor");
  SAGAN_CHECK(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3) && images.size(0) > 0,
              "make_image_grid: images must be (B, C, H, W) with B > 0 and C = 1 or 3, got shape {}",
              shape_str(images.shape()));
  SAGAN_CHECK(is_floating(images.dtype()), "make_image_grid: images must be floating, got {} of shape {}",
              dtype_name(images.dtype()), shape_str(images.shape()));
  SAGAN_CHECK(nrow >= 1 && padding >= 0, "make_image_grid: nrow {} must be >= 1 and padding {} >= 0 (images {})", nrow,
              padding, shape_str(images.shape()));
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  SAGAN_CHECK(H > 0 && W > 0, "make_image_grid: empty images of shape {}", shape_str(images.shape()));
  std::vector<double> v = images.detach().to_vector();  // host copy, row-major (B, C, H, W)
  const int64_t ncol = std::min(nrow, B), nrows = (B + ncol - 1) / ncol;
  Image grid(nrows * (H + padding) + padding, ncol * (W + padding) + padding, C, pad_value);
  for (int64_t b = 0; b < B; ++b) {
    int64_t oy = (b / ncol) * (H + padding) + padding, ox = (b % ncol) * (W + padding) + padding;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          double x01 = (v[static_cast<size_t>(((b * C + c) * H + y) * W + x)] + 1.0) / 2.0;
          grid.at(oy + y, ox + x, c) =
              std::isnan(x01) ? 0 : static_cast<uint8_t>(std::clamp(x01, 0.0, 1.0) * 255.0 + 0.5);
        }
  }
  return grid;
}

void save_image_grid(const std::string& path, const Tensor& images, int64_t nrow, int64_t padding, uint8_t pad_value) {
  write_png(path, make_image_grid(images, nrow, padding, pad_value));
}

}  // namespace sagan::io
