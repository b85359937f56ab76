// IDX files (gzipped or not, zlib reads both) and Fashion-MNIST on top.
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "models/data/dataset.h"

namespace sagan::data {

namespace {

struct GzCloser {
  gzFile f;
  ~GzCloser() {
    if (f) gzclose(f);
  }
};

std::string gz_error(gzFile f) {
  int code = 0;
  const char* msg = gzerror(f, &code);
  return code == Z_ERRNO ? std::strerror(errno) : (msg && *msg ? msg : "unknown zlib error");
}

// Reads up to n bytes; returns how many arrived before end of data. A damaged
// gzip stream (bad CRC, cut-off member) is an error rather than a short read.
size_t gz_read(gzFile f, uint8_t* dst, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
    int r = gzread(f, dst + got, chunk);
    SAGAN_CHECK(r >= 0, "read_idx: {}: corrupt or truncated data: {}", path, gz_error(f));
    if (r == 0) {
      // zlib reports a gzip stream cut short as a soft error after a short read.
      int code = Z_OK;
      gzerror(f, &code);
      SAGAN_CHECK(code == Z_OK, "read_idx: {}: corrupt or truncated data: {}", path, gz_error(f));
      break;
    }
    got += static_cast<size_t>(r);
  }
  return got;
}

class FashionMnist final : public Dataset {
 public:
  FashionMnist(std::string split, IdxArray images, IdxArray labels)
      : split_(std::move(split)), images_(std::move(images)), labels_(std::move(labels)) {}
  std::string name() const override { return "fashion_mnist/" + split_; }
  int64_t size() const override { return images_.dims[0]; }
  int64_t num_classes() const override { return 10; }
  int64_t channels() const override { return 1; }
  int64_t height() const override { return images_.dims[1]; }
  int64_t width() const override { return images_.dims[2]; }
  Example get(int64_t i) const override {
    check_index(i);
    Example ex;
    ex.image = io::Image(height(), width(), 1);
    auto src = images_.data.begin() + i * height() * width();
    std::copy(src, src + height() * width(), ex.image.pixels.begin());
    ex.label = labels_.data[static_cast<size_t>(i)];
    return ex;
  }

 private:
  std::string split_;
  IdxArray images_, labels_;
};

std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string& p : {dir + "/" + stem + ".gz", dir + "/" + stem})
    if (std::filesystem::exists(p)) return p;
  SAGAN_FAIL(
      "fashion_mnist: {}/{}.gz not found: install Debian's Fashion-MNIST files with "
      "`apt-get install dataset-fashion-mnist` (they go to {}) or pass the directory that holds the IDX files",
      dir, stem, kFashionMnistDir);
}

}  // namespace

IdxArray read_idx_u8(const std::string& path, int ndim) {
  GzCloser gz{gzopen(path.c_str(), "rb")};
  SAGAN_CHECK(gz.f != nullptr, "read_idx: {}: {}", path, std::strerror(errno));
  uint8_t head[4];
  SAGAN_CHECK(gz_read(gz.f, head, 4, path) == 4, "read_idx: {}: file too short for the IDX magic number", path);
  uint32_t magic = static_cast<uint32_t>(head[0]) << 24 | head[1] << 16 | head[2] << 8 | head[3];
  uint32_t want = 0x800u | static_cast<uint32_t>(ndim);
  SAGAN_CHECK(magic == want, "read_idx: {}: bad magic 0x{:08x}, expected 0x{:08x} (unsigned bytes, {} dims)", path,
              magic, want, ndim);
  IdxArray a;
  uint64_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    uint8_t b[4];
    SAGAN_CHECK(gz_read(gz.f, b, 4, path) == 4, "read_idx: {}: truncated header (dimension {} of {})", path, d, ndim);
    uint64_t n = static_cast<uint64_t>(b[0]) << 24 | b[1] << 16 | b[2] << 8 | b[3];
    a.dims.push_back(static_cast<int64_t>(n));
    total *= n;
    SAGAN_CHECK(total <= (1ull << 34), "read_idx: {}: dimensions {} are implausibly large", path,
                fmt::join(a.dims, "x"));
  }
  a.data.resize(static_cast<size_t>(total));
  size_t got = gz_read(gz.f, a.data.data(), a.data.size(), path);
  SAGAN_CHECK(got == total, "read_idx: {}: truncated: dimensions {} need {} data bytes, found {}", path,
              fmt::join(a.dims, "x"), total, got);
  uint8_t extra;
  SAGAN_CHECK(gz_read(gz.f, &extra, 1, path) == 0, "read_idx: {}: trailing bytes after the {} data bytes of {}", path,
              total, fmt::join(a.dims, "x"));
  return a;
}

std::shared_ptr<Dataset> fashion_mnist(const std::string& split, const std::string& dir) {
  SAGAN_CHECK(split == "train" || split == "test", "fashion_mnist: split must be 'train' or 'test', got '{}'", split);
  std::string prefix = split == "train" ? "train" : "t10k";
  std::string ipath = find_idx(dir, prefix + "-images-idx3-ubyte");
  std::string lpath = find_idx(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx_u8(ipath, 3);
  IdxArray labels = read_idx_u8(lpath, 1);
  SAGAN_CHECK(images.dims[0] == labels.dims[0], "fashion_mnist: {} holds {} images but {} holds {} labels", ipath,
              images.dims[0], lpath, labels.dims[0]);
  SAGAN_CHECK(images.dims[0] > 0 && images.dims[1] > 0 && images.dims[2] > 0, "fashion_mnist: {}: empty image array {}",
              ipath, fmt::join(images.dims, "x"));
  for (size_t i = 0; i < labels.data.size(); ++i)
    SAGAN_CHECK(labels.data[i] < 10, "fashion_mnist: {}: label {} of example {} is not in [0, 10)", lpath,
                labels.data[i], i);
  return std::make_shared<FashionMnist>(split, std::move(images), std::move(labels));
}

}  // namespace sagan::data
