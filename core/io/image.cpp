// PNG and JPEG codecs. libpng and libjpeg report errors by longjmp; every
// setjmp lives in a helper whose frame holds no objects with destructors, so
// the jump skips nothing, and the caller turns the failure into sagan::Error.
#include "sagan/core/io/image.h"

#include <jerror.h>  // the warning codes (JWRN_*)
#include <jpeglib.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "sagan/core/io/atomic_file.h"

namespace sagan::io {

namespace {

// Images beyond this are almost surely corrupt headers; refuse before allocating.
constexpr uint64_t kMaxPixels = 1ull << 28;
// libjpeg's own working memory. A progressive (multi-scan) JPEG holds every
// DCT coefficient of the image at once, 128 bytes per 8x8 block per component,
// allocated in jpeg_start_decompress from what the header claims, before a
// single scan is read: a 554-byte file can ask for 780 MB. 256 MB holds a
// progressive image of about 9400x9400 (4:2:0) or 6700x6700 (4:4:4).
constexpr uint64_t kMaxJpegWorkBytes = 256ull << 20;

// ------------------------------------------------------------------ PNG
struct PngIo {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  std::vector<uint8_t>* out = nullptr;
  char msg[256] = "unknown libpng error";
  bool limit = false;  // refused for its size, not found corrupt
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->msg, sizeof(io->msg), "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}

void png_read_cb(png_structp png, png_bytep dst, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) png_error(png, "unexpected end of data (file truncated)");
  std::memcpy(dst, io->data + io->pos, n);
  io->pos += n;
}
void png_write_cb(png_structp png, png_bytep src, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  io->out->insert(io->out->end(), src, src + n);
}
void png_flush_cb(png_structp) {}

// Returns false after a libpng error (message in io.msg) or a header we refuse.
bool png_decode_impl(png_structp png, png_infop info, Image& img, std::vector<png_bytep>& rows, PngIo& io) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &io, png_read_cb);
  // Ancillary chunks the decoder has no use for are skipped unread: libpng
  // would otherwise allocate and zero whatever length a text chunk claims (up
  // to 2 GB) before finding that the file is a few bytes long.
  static const png_byte kSkip[] =
      "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kSkip, static_cast<int>(sizeof(kSkip) / 5));
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (static_cast<uint64_t>(w) * h > kMaxPixels) {
    std::snprintf(io.msg, sizeof(io.msg), "image of %ux%u pixels, above the decoder's limit of 2^28 pixels", w, h);
    io.limit = true;
    return false;
  }
  // Deflate expands at most 1032-fold, so a file of io.size bytes holds at
  // most 1032 * io.size bytes of filtered rows (a filter byte + rowbytes
  // each). Checked before allocating, so a corrupt header cannot cost
  // gigabytes for a file of a few bytes.
  uint64_t filtered = static_cast<uint64_t>(h) * (png_get_rowbytes(png, info) + 1);
  if (filtered > 1032 * static_cast<uint64_t>(io.size)) {
    std::snprintf(io.msg, sizeof(io.msg),
                  "the header's %ux%u pixels need %llu bytes of row data, more than a %zu-byte file can hold "
                  "(truncated or corrupt)",
                  w, h, static_cast<unsigned long long>(filtered), io.size);
    return false;
  }
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  // Alpha is dropped, including the alpha channel that palette expansion
  // makes of a palette's transparency (tRNS).
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int c = png_get_channels(png, info);
  if ((c != 1 && c != 3) || png_get_rowbytes(png, info) != static_cast<size_t>(w) * c) {
    std::snprintf(io.msg, sizeof(io.msg), "unsupported pixel layout (%d channels after conversion)", c);
    return false;
  }
  img.height = h;
  img.width = w;
  img.channels = c;
  img.pixels.assign(static_cast<size_t>(w) * h * c, 0);
  rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = img.pixels.data() + static_cast<size_t>(y) * w * c;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);  // reaches IEND: a file cut after the pixels still fails
  return true;
}

bool png_encode_impl(png_structp png, png_infop info, const Image& img, std::vector<png_bytep>& rows, PngIo& io) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, &io, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, static_cast<png_uint_32>(img.width), static_cast<png_uint_32>(img.height), 8,
               img.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  rows.resize(static_cast<size_t>(img.height));
  for (int64_t y = 0; y < img.height; ++y)
    rows[y] = const_cast<png_bytep>(img.pixels.data() + static_cast<size_t>(y * img.width * img.channels));
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  return true;
}

// ------------------------------------------------------------------ JPEG
struct JpegErr {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX] = "unknown libjpeg error";
  const char* limit = nullptr;  // refused for its size, not found corrupt: how to get past it
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->msg);
  std::longjmp(err->jump, 1);
}
// Level -1 is a warning about corrupt data (e.g. premature end of file, where
// libjpeg would pad with gray): for training data that is an error too,
// except for warnings about the file's framing rather than its pixel data:
// junk bytes between markers (some of ImageNet's files have them; PIL and
// torchvision read them), an unknown JFIF version, an unknown Adobe
// transform code (libjpeg then takes the colour transform the component
// count suggests, as other readers do).
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  switch (cinfo->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JFIF_MAJOR:
    case JWRN_ADOBE_XFORM:
      return;
    default:
      jpeg_on_error(cinfo);
  }
}
void jpeg_on_output(j_common_ptr) {}

// Refuses a file whose header asks for more than kMaxJpegWorkBytes; false.
bool jpeg_over_limit(const jpeg_decompress_struct& cinfo, JpegErr& err, const char* kind, uint64_t bytes,
                     const char* of_what) {
  std::snprintf(err.msg, sizeof(err.msg),
                "%s image of %ux%u pixels needs %llu MB %s, above the decoder's limit of %llu MB", kind,
                cinfo.image_width, cinfo.image_height, static_cast<unsigned long long>(bytes >> 20), of_what,
                static_cast<unsigned long long>(kMaxJpegWorkBytes >> 20));
  err.limit = std::strcmp(kind, "progressive") == 0 ? "scale it down, or save it as baseline rather than progressive JPEG"
                                                    : "scale it down, or save it as baseline Huffman-coded JPEG";
  return false;
}

bool jpeg_decode_impl(jpeg_decompress_struct& cinfo, JpegErr& err, const uint8_t* data, size_t size, Image& img,
                      std::vector<uint8_t>& row) {
  if (setjmp(err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > kMaxPixels) {
    std::snprintf(err.msg, sizeof(err.msg), "image of %ux%u pixels, above the decoder's limit of 2^28 pixels",
                  cinfo.image_width, cinfo.image_height);
    err.limit = "scale it down";
    return false;
  }
  // An arithmetic-coded file (SOF9-11) decodes every row however little data
  // it has: past a marker libjpeg feeds the decoder zeros without a warning,
  // so growing the image with the rows that decode (below) does not bound
  // it, and 371 bytes can yield 38916x5380 pixels. Its decoded size is
  // capped up front, at the limit of libjpeg's own working memory.
  const uint64_t decoded_bytes =
      static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height * (cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3);
  if (cinfo.arith_code && decoded_bytes > kMaxJpegWorkBytes)
    return jpeg_over_limit(cinfo, err, "arithmetic-coded", decoded_bytes, "decoded");
  if (jpeg_has_multiple_scans(&cinfo)) {
    uint64_t coef_bytes = 0;  // what jdcoefct.c's whole-image buffer will take
    for (int c = 0; c < cinfo.num_components; ++c) {
      const jpeg_component_info& comp = cinfo.comp_info[c];
      auto round_up = [](uint64_t v, uint64_t m) { return (v + m - 1) / m * m; };
      coef_bytes += round_up(comp.width_in_blocks, comp.h_samp_factor) *
                    round_up(comp.height_in_blocks, comp.v_samp_factor) * sizeof(JBLOCK);
    }
    if (coef_bytes > kMaxJpegWorkBytes)
      return jpeg_over_limit(cinfo, err, "progressive", coef_bytes, "of coefficient memory");
  }
  // Backstop for any other buffer libjpeg sizes from the header: past this it
  // stops with "Backing store not supported" instead of allocating.
  cinfo.mem->max_memory_to_use = static_cast<long>(kMaxJpegWorkBytes);
  jpeg_start_decompress(&cinfo);
  int64_t w = cinfo.output_width, h = cinfo.output_height, cin = cinfo.output_components;
  img.height = h;
  img.width = w;
  img.channels = cmyk ? 3 : cin;
  img.pixels.clear();
  row.resize(static_cast<size_t>(w * cin));
  while (cinfo.output_scanline < cinfo.output_height) {
    int64_t y = cinfo.output_scanline;
    JSAMPROW r = row.data();
    jpeg_read_scanlines(&cinfo, &r, 1);
    // The image grows with the rows that decode rather than with what the
    // header claims, so a truncated or corrupt file fails before costing the
    // full size (a 435-byte file can claim 5380x38916 pixels).
    img.pixels.resize(static_cast<size_t>((y + 1) * w * img.channels));
    uint8_t* dst = img.pixels.data() + y * w * img.channels;
    if (!cmyk) {
      std::memcpy(dst, row.data(), row.size());
      continue;
    }
    // Adobe writes inverted CMYK: R = C * K / 255 and so on.
    for (int64_t x = 0; x < w; ++x) {
      const uint8_t* p = &row[static_cast<size_t>(x * 4)];
      for (int c = 0; c < 3; ++c) dst[x * 3 + c] = static_cast<uint8_t>((p[c] * p[3] + 127) / 255);
    }
  }
  jpeg_finish_decompress(&cinfo);
  return true;
}

// Header-only reads for read_image_channels: the colour type of a PNG, the
// colour space of a JPEG.
bool png_header_impl(png_structp png, png_infop info, int& color, PngIo& io) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &io, png_read_cb);
  png_read_info(png, info);
  color = png_get_color_type(png, info);
  return true;
}

bool jpeg_header_impl(jpeg_decompress_struct& cinfo, JpegErr& err, const uint8_t* data, size_t size, bool& gray) {
  if (setjmp(err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  return true;
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  SAGAN_CHECK(size >= 8 && png_sig_cmp(data, 0, 8) == 0, "decode_png: {}: not a PNG file (bad signature)", name);
  PngIo io;
  io.data = data;
  io.size = size;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
  SAGAN_CHECK(png != nullptr, "decode_png: {}: cannot create a libpng reader", name);
  png_infop info = png_create_info_struct(png);
  Image img;
  std::vector<png_bytep> rows;
  bool ok = info != nullptr && png_decode_impl(png, info, img, rows, io);
  png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  SAGAN_CHECK(ok || !io.limit, "decode_png: {}: refused: {} (a corrupt header, or a real image: scale it down)",
              name, io.msg);
  SAGAN_CHECK(ok, "decode_png: {}: corrupt PNG: {}", name, io.msg);
  return img;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  SAGAN_CHECK(size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF,
              "decode_jpeg: {}: not a JPEG file (bad SOI marker)", name);
  jpeg_decompress_struct cinfo{};
  JpegErr err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  err.mgr.output_message = jpeg_on_output;
  Image img;
  std::vector<uint8_t> row;
  bool ok = jpeg_decode_impl(cinfo, err, data, size, img, row);
  jpeg_destroy_decompress(&cinfo);
  // A size refusal is not called corrupt: the file may be a real photo.
  SAGAN_CHECK(ok || err.limit == nullptr, "decode_jpeg: {}: refused: {} (a corrupt header, or a real image: {})", name,
              err.msg, err.limit);
  SAGAN_CHECK(ok, "decode_jpeg: {}: corrupt JPEG: {}", name, err.msg);
  return img;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  if (size >= 8 && png_sig_cmp(data, 0, 8) == 0) return decode_png(data, size, name);
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return decode_jpeg(data, size, name);
  SAGAN_FAIL("read_image: {}: not a PNG or JPEG file ({} bytes, unrecognised signature)", name, size);
}

Image read_image(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

namespace {

// The channels of an image held in `bytes` (all of a file or its first
// bytes), from its header; `path` names it in errors. With throw_errors
// false a header that cannot be read gives 0 instead of an error.
int64_t header_channels(const std::vector<uint8_t>& bytes, const std::string& path, bool throw_errors) {
  if (bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0) {
    PngIo io;
    io.data = bytes.data();
    io.size = bytes.size();
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    SAGAN_CHECK(png != nullptr, "decode_png: {}: cannot create a libpng reader", path);
    png_infop info = png_create_info_struct(png);
    int color = 0;
    bool ok = info != nullptr && png_header_impl(png, info, color, io);
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    if (!ok && !throw_errors) return 0;
    SAGAN_CHECK(ok, "decode_png: {}: corrupt PNG: {}", path, io.msg);
    return (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;  // gray and gray + alpha decode to 1 channel
  }
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
    jpeg_decompress_struct cinfo{};
    JpegErr err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    err.mgr.output_message = jpeg_on_output;
    bool gray = false;
    bool ok = jpeg_header_impl(cinfo, err, bytes.data(), bytes.size(), gray);
    jpeg_destroy_decompress(&cinfo);
    if (!ok && !throw_errors) return 0;
    SAGAN_CHECK(ok, "decode_jpeg: {}: corrupt JPEG: {}", path, err.msg);
    return gray ? 1 : 3;
  }
  if (!throw_errors) return 0;
  SAGAN_FAIL("read_image: {}: not a PNG or JPEG file ({} bytes, unrecognised signature)", path, bytes.size());
}

}  // namespace

// The header is nearly always in the first 64 KiB, so a grayscale data set
// of large photographs is not read in full twice (here and in training).
// A JPEG's EXIF thumbnail or ICC profile, or a PNG's text chunks, can push
// it further: a header the prefix does not complete is read from the whole
// file, whose errors are then the file's own.
int64_t read_image_channels(const std::string& path) {
  constexpr size_t kProbeBytes = size_t{1} << 16;
  std::vector<uint8_t> bytes = read_file(path, kProbeBytes);
  if (bytes.size() == kProbeBytes) {
    if (const int64_t channels = header_channels(bytes, path, false)) return channels;
    bytes = read_file(path);
  }
  return header_channels(bytes, path, true);
}

std::vector<uint8_t> encode_png(const Image& img, const std::string& name) {
  SAGAN_CHECK(img.channels == 1 || img.channels == 3, "encode_png: {}: need 1 or 3 channels, got {}", name,
              img.channels);
  SAGAN_CHECK(img.height > 0 && img.width > 0 && img.height < (1 << 24) && img.width < (1 << 24),
              "encode_png: {}: bad size {}x{}", name, img.height, img.width);
  SAGAN_CHECK(img.pixels.size() == static_cast<size_t>(img.height * img.width * img.channels),
              "encode_png: {}: {} pixel bytes for a {}x{}x{} image", name, img.pixels.size(), img.height, img.width,
              img.channels);
  std::vector<uint8_t> out;
  PngIo io;
  io.out = &out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
  SAGAN_CHECK(png != nullptr, "encode_png: {}: cannot create a libpng writer", name);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows;
  bool ok = info != nullptr && png_encode_impl(png, info, img, rows, io);
  png_destroy_write_struct(&png, info ? &info : nullptr);
  SAGAN_CHECK(ok, "encode_png: {}: {}", name, io.msg);
  return out;
}

void write_png(const std::string& path, const Image& img) {
  std::vector<uint8_t> bytes = encode_png(img, path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace sagan::io
