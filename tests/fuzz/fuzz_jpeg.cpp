// The JPEG decoder (core/io/image.cpp, libjpeg underneath) on arbitrary
// bytes: refused naming the file, or a well-formed 8-bit gray/RGB image
// (CMYK converted) that the data pipeline's geometry can crop and resize.
#include "sagan/core/io/image.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.jpg";
  fuzz::refuse_cleanly(name, [&] {
    io::Image img = io::decode_jpeg(data, size, name);
    FUZZ_ASSERT(img.height > 0 && img.width > 0 && (img.channels == 1 || img.channels == 3));
    FUZZ_ASSERT(img.pixels.size() == static_cast<size_t>(img.height * img.width * img.channels));
    if (img.height * img.width > (1 << 16)) return;  // keep each run fast
    io::Image square = io::center_crop_square(img);
    FUZZ_ASSERT(square.height == std::min(img.height, img.width) && square.width == square.height);
    io::Image small = io::resize(square, 8, 8);
    FUZZ_ASSERT(small.height == 8 && small.width == 8 && small.channels == img.channels);
  });
  return 0;
}
