// CIFAR-10, binary version (cifar-10-binary.tar.gz, extracted).
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/models/data/dataset.h"

namespace sagan::data {

namespace {

constexpr int64_t kSide = 32, kPlane = kSide * kSide, kRecord = 1 + 3 * kPlane;  // 3073 bytes

class Cifar10 final : public Dataset {
 public:
  Cifar10(std::string split, std::vector<uint8_t> records, std::vector<std::string> files = {})
      : split_(std::move(split)), records_(std::move(records)), files_(std::move(files)) {}
  std::string name() const override { return "cifar10/" + split_; }
  int64_t size() const override { return static_cast<int64_t>(records_.size()) / kRecord; }
  int64_t num_classes() const override { return 10; }
  int64_t channels() const override { return 3; }
  int64_t height() const override { return kSide; }
  int64_t width() const override { return kSide; }
  Example get(int64_t i) const override {
    check_index(i);
    const uint8_t* r = records_.data() + i * kRecord;
    Example ex;
    ex.label = r[0];
    ex.image = io::Image(kSide, kSide, 3);
    // Stored as R, G, B planes (C, H, W); Image is interleaved (H, W, C).
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < kPlane; ++p) ex.image.pixels[static_cast<size_t>(p * 3 + c)] = r[1 + c * kPlane + p];
    return ex;
  }
  std::vector<std::string> files() const override { return files_; }

 private:
  std::string split_;
  std::vector<uint8_t> records_;
  std::vector<std::string> files_;
};

// Whole records, each with a label in 0-9; errors name the file.
void check_batch(const std::vector<uint8_t>& bytes, const std::string& f) {
  SAGAN_CHECK(!bytes.empty() && bytes.size() % kRecord == 0,
              "cifar10: {}: size {} bytes is not a positive multiple of the {}-byte record", f, bytes.size(), kRecord);
  for (size_t r = 0; r < bytes.size() / kRecord; ++r)
    SAGAN_CHECK(bytes[r * kRecord] < 10, "cifar10: {}: record {} has label {}, expected 0-9", f, r, bytes[r * kRecord]);
}

void check_split(const std::string& split) {
  SAGAN_CHECK(split == "train" || split == "test", "cifar10: split must be 'train' or 'test', got '{}'", split);
}

}  // namespace

std::shared_ptr<Dataset> cifar10(const std::string& dir, const std::string& split) {
  check_split(split);
  std::vector<std::string> files;
  if (split == "train")
    for (int b = 1; b <= 5; ++b) files.push_back(fmt::format("{}/data_batch_{}.bin", dir, b));
  else
    files.push_back(dir + "/test_batch.bin");
  std::vector<uint8_t> all;
  for (const std::string& f : files) {
    SAGAN_CHECK(std::filesystem::exists(f),
                "cifar10: {} not found: download the binary version (cifar-10-binary.tar.gz) from "
                "https://www.cs.toronto.edu/~kriz/cifar.html and pass the directory holding data_batch_*.bin",
                f);
    std::vector<uint8_t> bytes = io::read_file(f);
    check_batch(bytes, f);
    all.insert(all.end(), bytes.begin(), bytes.end());
  }
  return std::make_shared<Cifar10>(split, std::move(all), std::move(files));
}

std::shared_ptr<Dataset> cifar10_from_bytes(std::vector<uint8_t> batch, const std::string& name,
                                            const std::string& split) {
  check_split(split);
  check_batch(batch, name);
  return std::make_shared<Cifar10>(split, std::move(batch));
}

}  // namespace sagan::data
