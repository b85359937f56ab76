// Labelled image data sets. get() is const and thread-safe: the DataLoader
// calls it from its decoding thread while the trainer holds the data set.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sagan/core/io/image.h"

namespace sagan::data {

struct Example {
  io::Image image;    // (H, W, C) uint8
  int64_t label = 0;  // in [0, num_classes); unlabelled data: one class, label 0
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::string name() const = 0;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;  // at least 1 (the DataLoader refuses 0)
  // Geometry of the stored images. height/width are 0 when they vary from
  // image to image (image folders); channels never varies.
  virtual int64_t channels() const = 0;
  virtual int64_t height() const = 0;
  virtual int64_t width() const = 0;
  // Throws naming the data set (and file) when i is out of range or the
  // image cannot be decoded. The DataLoader turns any other std::exception
  // into a sagan::Error naming the data set and i (Trainer::step: InputsNotDrawn).
  virtual Example get(int64_t i) const = 0;
  // The files the images come from (empty when built from bytes in memory):
  // what data_fingerprint() looks at.
  virtual std::vector<std::string> files() const { return {}; }
  // The classes' names in label order where the data set has them (an image
  // folder's sub-folders); empty otherwise. A run keeps them
  // (<run_dir>/classes.txt) so that a resume on renamed class folders is
  // refused instead of training with labels swapped.
  virtual std::vector<std::string> class_names() const { return {}; }

 protected:
  void check_index(int64_t i) const;
};

// Where a data set was read from and a cheap fingerprint of its files, for
// keys of cached statistics: the canonical directory holding them, their
// count, total size, newest modification time and a hash over every path,
// size and time (stat only; no byte is read). The name ("fashion_mnist/test")
// does not tell MNIST from Fashion-MNIST, or two CIFAR-style directories
// apart, nor files replaced in place; this does. "in memory" without files.
std::string data_fingerprint(const Dataset& ds);

// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST (or MNIST: same IDX files) from <dir>/<prefix>-images-idx3-ubyte[.gz]
// and <prefix>-labels-idx1-ubyte[.gz], prefix "train" or "t10k". split is
// "train" or "test". Everything is decoded into memory up front.
std::shared_ptr<Dataset> fashion_mnist(const std::string& split = "train", const std::string& dir = kFashionMnistDir);

// CIFAR-10 binary version: <dir>/data_batch_{1..5}.bin (train) or
// <dir>/test_batch.bin (test), records of 1 label byte + 3072 bytes of
// 32x32 R, G, B planes.
std::shared_ptr<Dataset> cifar10(const std::string& dir, const std::string& split = "train");
// One batch file already in memory (its bytes), checked the same way; `name`
// stands for the file in messages.
std::shared_ptr<Dataset> cifar10_from_bytes(std::vector<uint8_t> batch, const std::string& name,
                                            const std::string& split = "test");

// <root>/<class>/**/*.{png,jpg,jpeg} (case-insensitive); classes are the
// sub-folder names in sorted order, files sorted by path. Images are decoded
// lazily and converted to `channels` (1 or 3). channels 0 (auto): 1 when every
// image is grayscale (read from the file headers, up to the first colour
// image), else 3.
std::shared_ptr<Dataset> image_folder(const std::string& root, int64_t channels = 3);

// Every .png/.jpg/.jpeg file (case-insensitive) under dir, recursively
// (following symlinked folders), sorted by path; empty when there is none.
// Names starting with '.' are skipped, files and folders (._x.png, a
// .ipynb_checkpoints folder), and macOS's __MACOSX folders, as image_folder
// skips such class folders. A link named like an image whose target is gone
// is an error naming it. `other_images`, when given, counts the files of
// image formats this loader does not read (.webp, .bmp, .gif, .tif, .tiff),
// skipped too.
std::vector<std::string> image_files_under(const std::string& dir, int64_t* other_images = nullptr);
// What channels 0 (auto) picks for these files: 1 when every file's header
// says grayscale (read up to the first colour image), else 3.
int64_t auto_channels(const std::vector<std::string>& files);

// ---- IDX (the MNIST container), exposed for tests and other IDX data sets.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // ubyte elements, row-major
};
// Reads a (possibly gzipped) IDX file of unsigned bytes with the given number
// of dims (magic 0x00000800 | ndim). Wrong magic, a zero dimension,
// truncation and trailing bytes are errors naming the file.
IdxArray read_idx_u8(const std::string& path, int ndim);
// The same from the file's bytes in memory; `name` stands for the path in messages.
IdxArray parse_idx_u8(const uint8_t* data, size_t size, int ndim, const std::string& name);
// Fashion-MNIST from arrays already read (images N x H x W, labels N), checked
// like fashion_mnist(); the paths name them in messages.
std::shared_ptr<Dataset> fashion_mnist_from_idx(const std::string& split, IdxArray images, const std::string& ipath,
                                                IdxArray labels, const std::string& lpath);

}  // namespace sagan::data
