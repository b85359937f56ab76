// IDX files (gzipped or not, zlib reads both) and Fashion-MNIST on top.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/models/data/dataset.h"

namespace sagan::data {

namespace {

// Sequential reader over a file's bytes as zlib's gzread sees them: gzip (one
// or more members) when they start with the gzip magic, raw otherwise; bytes
// after the last member that do not start another member are ignored.
class GzipOrRaw {
 public:
  GzipOrRaw(const uint8_t* data, size_t size, const std::string& name) : data_(data), size_(size), name_(name) {
    gzip_ = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip_) return;
    // 15 + 16: a gzip wrapper (header and CRC-32 trailer) around deflate data.
    SAGAN_CHECK(inflateInit2(&z_, 15 + 16) == Z_OK, "read_idx: {}: cannot start zlib", name);
    z_.next_in = const_cast<Bytef*>(data);
    z_.avail_in = static_cast<uInt>(std::min<size_t>(size, UINT32_MAX));
    fed_ = z_.avail_in;
  }
  ~GzipOrRaw() {
    if (gzip_) inflateEnd(&z_);
  }
  GzipOrRaw(const GzipOrRaw&) = delete;
  GzipOrRaw& operator=(const GzipOrRaw&) = delete;

  // Up to n bytes; fewer only at the end of the data. A damaged gzip stream
  // (bad CRC, cut-off member) is an error rather than a short read.
  size_t read(uint8_t* dst, size_t n) {
    if (!gzip_) {
      size_t got = std::min(n, size_ - pos_);
      if (got) std::memcpy(dst, data_ + pos_, got);
      pos_ += got;
      return got;
    }
    size_t got = 0;
    while (got < n && !ended_) {
      if (z_.avail_in == 0 && fed_ < size_) refill();
      z_.next_out = dst + got;
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - got, 1u << 30));
      uInt before = z_.avail_out;
      int r = inflate(&z_, Z_NO_FLUSH);
      got += before - z_.avail_out;
      if (r == Z_STREAM_END) {
        if (z_.avail_in == 0 && fed_ < size_) refill();
        bool another = z_.avail_in >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b;
        if (another)
          inflateReset(&z_);
        else
          ended_ = true;
        continue;
      }
      SAGAN_CHECK(!(r == Z_BUF_ERROR && z_.avail_in == 0 && fed_ == size_),
                  "read_idx: {}: corrupt or truncated data: unexpected end of file", name_);
      SAGAN_CHECK(r == Z_OK || r == Z_BUF_ERROR, "read_idx: {}: corrupt or truncated data: {}", name_,
                  z_.msg ? z_.msg : "zlib error");
    }
    return got;
  }

 private:
  void refill() {
    z_.next_in = const_cast<Bytef*>(data_ + fed_);
    z_.avail_in = static_cast<uInt>(std::min<size_t>(size_ - fed_, UINT32_MAX));
    fed_ += z_.avail_in;
  }

  const uint8_t* data_;
  size_t size_, pos_ = 0, fed_ = 0;
  std::string name_;
  bool gzip_ = false, ended_ = false;
  z_stream z_{};
};

class FashionMnist final : public Dataset {
 public:
  FashionMnist(std::string split, IdxArray images, IdxArray labels, std::vector<std::string> files)
      : split_(std::move(split)), images_(std::move(images)), labels_(std::move(labels)), files_(std::move(files)) {}
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
  std::vector<std::string> files() const override { return files_; }

 private:
  std::string split_;
  IdxArray images_, labels_;
  std::vector<std::string> files_;
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

IdxArray parse_idx_u8(const uint8_t* bytes, size_t size, int ndim, const std::string& path) {
  GzipOrRaw in(bytes, size, path);
  uint8_t head[4];
  SAGAN_CHECK(in.read(head, 4) == 4, "read_idx: {}: file too short for the IDX magic number", path);
  uint32_t magic = static_cast<uint32_t>(head[0]) << 24 | head[1] << 16 | head[2] << 8 | head[3];
  uint32_t want = 0x800u | static_cast<uint32_t>(ndim);
  SAGAN_CHECK(magic == want, "read_idx: {}: bad magic 0x{:08x}, expected 0x{:08x} (unsigned bytes, {} dims)", path,
              magic, want, ndim);
  IdxArray a;
  uint64_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    uint8_t b[4];
    SAGAN_CHECK(in.read(b, 4) == 4, "read_idx: {}: truncated header (dimension {} of {})", path, d, ndim);
    uint64_t n = static_cast<uint64_t>(b[0]) << 24 | b[1] << 16 | b[2] << 8 | b[3];
    a.dims.push_back(static_cast<int64_t>(n));
    // Checked before multiplying: 2^31 x 8 x 2^30 would wrap around to 0.
    SAGAN_CHECK(n == 0 || total <= (1ull << 34) / n, "read_idx: {}: dimensions {} are implausibly large", path,
                fmt::join(a.dims, "x"));
    total *= n;
  }
  // Before looking at the data: a zeroed header field would otherwise surface
  // as "trailing bytes" or as a count mismatch with the other file.
  for (size_t d = 0; d < a.dims.size(); ++d)
    SAGAN_CHECK(a.dims[d] > 0, "read_idx: {}: dimension {} ({}) is 0: the array is empty (a corrupt header?)", path, d,
                fmt::join(a.dims, "x"));
  // Grow with the data that arrives rather than with what the header claims,
  // so a corrupt header cannot make us allocate gigabytes for a small file.
  constexpr size_t kChunk = size_t(1) << 20;
  size_t got = 0;
  while (got < total) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, total - got));
    a.data.resize(got + want);
    size_t r = in.read(a.data.data() + got, want);
    got += r;
    if (r < want) break;
  }
  a.data.resize(got);
  SAGAN_CHECK(got == total, "read_idx: {}: truncated: dimensions {} need {} data bytes, found {}", path,
              fmt::join(a.dims, "x"), total, got);
  uint8_t extra;
  SAGAN_CHECK(in.read(&extra, 1) == 0, "read_idx: {}: trailing bytes after the {} data bytes of {}", path, total,
              fmt::join(a.dims, "x"));
  return a;
}

IdxArray read_idx_u8(const std::string& path, int ndim) {
  std::vector<uint8_t> bytes = io::read_file(path);
  return parse_idx_u8(bytes.data(), bytes.size(), ndim, path);
}

std::shared_ptr<Dataset> fashion_mnist(const std::string& split, const std::string& dir) {
  SAGAN_CHECK(split == "train" || split == "test", "fashion_mnist: split must be 'train' or 'test', got '{}'", split);
  std::string prefix = split == "train" ? "train" : "t10k";
  std::string ipath = find_idx(dir, prefix + "-images-idx3-ubyte");
  std::string lpath = find_idx(dir, prefix + "-labels-idx1-ubyte");
  return fashion_mnist_from_idx(split, read_idx_u8(ipath, 3), ipath, read_idx_u8(lpath, 1), lpath);
}

std::shared_ptr<Dataset> fashion_mnist_from_idx(const std::string& split, IdxArray images, const std::string& ipath,
                                                IdxArray labels, const std::string& lpath) {
  SAGAN_CHECK(split == "train" || split == "test", "fashion_mnist: split must be 'train' or 'test', got '{}'", split);
  SAGAN_CHECK(images.dims.size() == 3 && labels.dims.size() == 1,
              "fashion_mnist: {} must be 3-dimensional ({}) and {} 1-dimensional ({})", ipath,
              fmt::join(images.dims, "x"), lpath, fmt::join(labels.dims, "x"));
  SAGAN_CHECK(images.dims[0] == labels.dims[0], "fashion_mnist: {} holds {} images but {} holds {} labels", ipath,
              images.dims[0], lpath, labels.dims[0]);
  SAGAN_CHECK(images.dims[0] > 0 && images.dims[1] > 0 && images.dims[2] > 0, "fashion_mnist: {}: empty image array {}",
              ipath, fmt::join(images.dims, "x"));
  for (size_t i = 0; i < labels.data.size(); ++i)
    SAGAN_CHECK(labels.data[i] < 10, "fashion_mnist: {}: label {} of example {} is not in [0, 10)", lpath,
                labels.data[i], i);
  return std::make_shared<FashionMnist>(split, std::move(images), std::move(labels),
                                        std::vector<std::string>{ipath, lpath});
}

}  // namespace sagan::data
