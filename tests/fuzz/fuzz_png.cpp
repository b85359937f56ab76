// The PNG decoder (core/io/image.cpp, libpng underneath) on arbitrary bytes:
// refused naming the file, or a well-formed 8-bit gray/RGB image that our
// encoder writes and the decoder reads back unchanged.
#include "sagan/core/io/image.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.png";
  fuzz::refuse_cleanly(name, [&] {
    io::Image img = io::decode_png(data, size, name);
    FUZZ_ASSERT(img.height > 0 && img.width > 0 && (img.channels == 1 || img.channels == 3));
    FUZZ_ASSERT(img.pixels.size() == static_cast<size_t>(img.height * img.width * img.channels));
    if (img.height * img.width > (1 << 16)) return;  // keep each run fast
    std::vector<uint8_t> png = io::encode_png(img, name);
    io::Image again = io::decode_png(png.data(), png.size(), name);
    FUZZ_ASSERT(again.height == img.height && again.width == img.width && again.channels == img.channels);
    FUZZ_ASSERT(again.pixels == img.pixels);
    io::Image other = io::convert_channels(img, 4 - img.channels);  // 1 <-> 3
    FUZZ_ASSERT(other.pixels.size() == static_cast<size_t>(img.height * img.width * (4 - img.channels)));
  });
  return 0;
}
