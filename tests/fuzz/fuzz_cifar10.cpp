// The CIFAR-10 binary reader (models/data/cifar10.cpp) on arbitrary bytes as
// one batch file: refused naming the file, or every record reads back as a
// 32x32 RGB image (planes interleaved) with its label.
#include "sagan/models/data/dataset.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz_batch.bin";
  fuzz::refuse_cleanly(name, [&] {
    auto ds = data::cifar10_from_bytes(std::vector<uint8_t>(data, data + size), name);
    constexpr size_t kRecord = 3073, kPlane = 1024;
    FUZZ_ASSERT(static_cast<size_t>(ds->size()) * kRecord == size);
    FUZZ_ASSERT(ds->height() == 32 && ds->width() == 32 && ds->channels() == 3 && ds->num_classes() == 10);
    for (int64_t i = 0; i < ds->size(); ++i) {
      data::Example e = ds->get(i);
      const uint8_t* r = data + static_cast<size_t>(i) * kRecord;
      FUZZ_ASSERT(e.label == r[0] && e.label < 10);
      FUZZ_ASSERT(e.image.height == 32 && e.image.width == 32 && e.image.channels == 3);
      for (size_t c = 0; c < 3; ++c)
        for (size_t p = 0; p < kPlane; p += 97) FUZZ_ASSERT(e.image.pixels[p * 3 + c] == r[1 + c * kPlane + p]);
    }
  });
  return 0;
}
