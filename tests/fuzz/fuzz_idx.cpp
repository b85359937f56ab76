// The IDX reader (models/data/fashion_mnist.cpp) on arbitrary bytes, gzipped
// or raw: as a 1-dim labels file and as a 3-dim images file, the latter then
// made into a Fashion-MNIST data set whose examples are read back.
#include <algorithm>

#include "sagan/models/data/dataset.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

namespace {
// The product of the dimensions; aborts (a finding) if it overflows, which
// a parse that succeeded must never allow.
uint64_t product(const std::vector<int64_t>& dims) {
  uint64_t n = 1;
  for (int64_t d : dims) FUZZ_ASSERT(!__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n));
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz-idx-ubyte";
  fuzz::refuse_cleanly(name, [&] {
    data::IdxArray labels = data::parse_idx_u8(data, size, 1, name);
    FUZZ_ASSERT(labels.dims.size() == 1 && labels.data.size() == product(labels.dims));
  });
  fuzz::refuse_cleanly(name, [&] {
    data::IdxArray images = data::parse_idx_u8(data, size, 3, name);
    FUZZ_ASSERT(images.dims.size() == 3 && images.data.size() == product(images.dims));
    // Labels to match, unless the header claims more images than is sensible
    // for a harness to invent labels for.
    if (images.dims[0] > (1 << 20)) return;
    data::IdxArray labels{{images.dims[0]}, std::vector<uint8_t>(static_cast<size_t>(images.dims[0]))};
    for (size_t i = 0; i < labels.data.size(); ++i) labels.data[i] = static_cast<uint8_t>(i % 10);
    const std::vector<uint8_t> pixels = images.data;
    auto ds = data::fashion_mnist_from_idx("train", std::move(images), name, std::move(labels), "labels");
    int64_t h = ds->height(), w = ds->width();
    FUZZ_ASSERT(h > 0 && w > 0 && ds->channels() == 1 && ds->size() > 0);
    for (int64_t i : {int64_t(0), ds->size() / 2, ds->size() - 1}) {
      data::Example e = ds->get(i);
      FUZZ_ASSERT(e.label == i % 10 && e.image.height == h && e.image.width == w && e.image.channels == 1);
      FUZZ_ASSERT(std::equal(e.image.pixels.begin(), e.image.pixels.end(), pixels.begin() + i * h * w));
    }
  });
  return 0;
}
