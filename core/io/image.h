// 8-bit images: PNG/JPEG decoding to interleaved HWC bytes, PNG encoding
// (atomic), sample grids, and the geometry utilities the data loader needs.
// The engine's Tensor has no uint8 dtype, so decoded pixels live in Image.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::io {

struct Image {
  int64_t height = 0, width = 0, channels = 0;  // channels: 1 (gray) or 3 (RGB)
  std::vector<uint8_t> pixels;                  // (H, W, C) row-major

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c, uint8_t fill = 0)
      : height(h), width(w), channels(c), pixels(static_cast<size_t>(h * w * c), fill) {}
  uint8_t& at(int64_t y, int64_t x, int64_t c) { return pixels[static_cast<size_t>((y * width + x) * channels + c)]; }
  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
};

// Float pixels for resampling without intermediate rounding; same layout.
struct ImageF {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<float> pixels;  // (H, W, C)
};

// Decoders: gray (and gray+alpha) give 1 channel, everything else 3; alpha is
// dropped, palettes expanded, 16-bit reduced to 8. Corrupt or truncated data
// throws naming `name` (the file path); libpng/libjpeg never print or abort.
Image decode_png(const uint8_t* data, size_t size, const std::string& name);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);
// By content (PNG signature or JPEG SOI marker), not by extension.
Image decode_image(const uint8_t* data, size_t size, const std::string& name);
Image read_image(const std::string& path);  // read_file + decode_image
// The channels read_image would give (1 or 3), from the file's header only;
// errors as read_image's.
int64_t read_image_channels(const std::string& path);

// 8-bit gray (C = 1) or RGB (C = 3) PNG; written atomically.
std::vector<uint8_t> encode_png(const Image& img, const std::string& name = "png");
void write_png(const std::string& path, const Image& img);

// images (B, C, H, W), C = 1 or 3, any float dtype/device, values in [-1, 1]
// (clamped) -> one PNG with min(nrow, B) images per row and `padding` pixels
// of pad_value (in [0, 255]) around and between them, like torchvision's
// save_image(normalize=True, value_range=(-1, 1)).
Image make_image_grid(const Tensor& images, int64_t nrow = 8, int64_t padding = 2, uint8_t pad_value = 0);
void save_image_grid(const std::string& path, const Tensor& images, int64_t nrow = 8, int64_t padding = 2,
                     uint8_t pad_value = 0);

// The centered h x w window (offsets floor((H - h) / 2), floor((W - w) / 2)).
Image center_crop(const Image& img, int64_t h, int64_t w);
// Largest centered square.
Image center_crop_square(const Image& img);

// Resampling, separately per axis: an axis that shrinks uses area averaging
// (each output pixel is the overlap-weighted mean of the input pixels its
// footprint covers, like OpenCV INTER_AREA), an axis that grows uses bilinear
// interpolation with half-pixel centers (PyTorch align_corners=False).
ImageF to_float(const Image& img);
Image to_uint8(const ImageF& img);  // rounds to nearest, clamps to [0, 255]
ImageF resize(const ImageF& img, int64_t h, int64_t w);
Image resize(const Image& img, int64_t h, int64_t w);

// Nearest-neighbour resampling with half-pixel centres: output i of an axis
// of n -> m samples takes input floor((i + 0.5) * n / m) (PIL's NEAREST,
// PyTorch's "nearest-exact").
ImageF resize_nearest(const ImageF& img, int64_t h, int64_t w);
// img on an h x w canvas of `fill` (h, w at least its size), at offsets
// floor((h - H) / 2), floor((w - W) / 2) as center_crop.
ImageF pad_center(const ImageF& img, int64_t h, int64_t w, float fill = 0.0f);

// How the data pipeline brings an image smaller than the resolution up to it.
enum class Upscale { bilinear, nearest, pad };
const char* upscale_name(Upscale u);  // "bilinear", "nearest", "pad"
// "bilinear" | "nearest" | "pad"; anything else is an error naming `option`.
Upscale parse_upscale(const std::string& name, const std::string& option = "--resize");
// The geometry of training, evaluation and FD data: the largest centred
// square; if larger than side x side it is area-averaged down, if smaller
// `up` brings it up (bilinear, nearest, or centred on black).
ImageF fit_square(const Image& img, int64_t side, Upscale up);

// Gray <-> RGB (luma 0.299 R + 0.587 G + 0.114 B, as PIL's "L" mode).
Image convert_channels(const Image& img, int64_t channels);

}  // namespace sagan::io
