// A folder of class sub-folders of PNG/JPEG files (torchvision's ImageFolder layout).
#include <algorithm>
#include <filesystem>
#include <functional>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/warning.h"
#include "sagan/models/data/dataset.h"

namespace fs = std::filesystem;

namespace sagan::data {

namespace {

// Skipped wherever they stand, class folders, images and the folders
// between: macOS's ._x.png resource forks (not images: the first step to
// reach one would stop the run), .ipynb_checkpoints copies (trained on
// twice), .DS_Store, .git.
bool hidden_entry(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  return name[0] == '.' || name == "__MACOSX";  // a macOS zip's resource forks
}

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// A file the loader reads (PNG or JPEG, by extension in any case).
bool is_image_file(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// An image of a format the loader does not read: skipped, and counted.
bool is_other_image(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".webp" || ext == ".bmp" || ext == ".gif" || ext == ".tif" || ext == ".tiff";
}

class ImageFolder final : public Dataset {
 public:
  ImageFolder(std::string root, int64_t channels, std::vector<std::string> classes,
              std::vector<std::pair<std::string, int64_t>> files)
      : root_(std::move(root)), channels_(channels), classes_(std::move(classes)), files_(std::move(files)) {}
  std::string name() const override { return "image_folder(" + root_ + ")"; }
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  int64_t channels() const override { return channels_; }
  int64_t height() const override { return 0; }
  int64_t width() const override { return 0; }
  Example get(int64_t i) const override {
    check_index(i);
    const auto& [path, label] = files_[static_cast<size_t>(i)];
    Example ex;
    ex.image = io::convert_channels(io::read_image(path), channels_);  // errors name the path
    ex.label = label;
    return ex;
  }
  std::vector<std::string> files() const override {
    std::vector<std::string> out;
    out.reserve(files_.size());
    for (const auto& f : files_) out.push_back(f.first);
    return out;
  }
  std::vector<std::string> class_names() const override { return classes_; }

 private:
  std::string root_;
  int64_t channels_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> files_;
};

}  // namespace

std::shared_ptr<Dataset> image_folder(const std::string& root, int64_t channels) {
  SAGAN_CHECK(channels == 0 || channels == 1 || channels == 3,
              "image_folder: {}: channels must be 1, 3 or 0 (auto), got {}", root, channels);
  std::error_code ec;
  SAGAN_CHECK(fs::exists(root, ec), "image_folder: {} does not exist", root);
  SAGAN_CHECK(fs::is_directory(root, ec), "image_folder: {} is not a directory", root);
  std::vector<std::string> classes;
  int64_t loose = 0;  // image files beside the class folders: in no class
  for (const auto& e : io::list_directory(root, "image_folder")) {
    if (hidden_entry(e)) continue;
    if (e.is_directory(ec))
      classes.push_back(e.path().filename().string());
    else if (is_image_file(e.path()))
      ++loose;
  }
  std::sort(classes.begin(), classes.end());
  SAGAN_CHECK(!classes.empty(), "image_folder: {} has no class sub-folders (expected <root>/<class>/<image>)", root);
  // What the user would otherwise not know was left out or mixed in.
  if (loose > 0)
    warn(
        fmt::format("image_folder: {}: {} image file(s) directly in it, beside its class folders, are in no class "
                    "and are left out",
                    root, loose));
  const auto named = [&](const char* name) { return std::count(classes.begin(), classes.end(), name) > 0; };
  if (named("train") && (named("val") || named("valid") || named("test")))
    warn(
        fmt::format("image_folder: {}: its class folders include 'train' and '{}': a data set's root rather than "
                    "its training split? Each split would train as a class; give {}/train to train on that split",
                    root,
                    named("val")     ? "val"
                    : named("valid") ? "valid"
                                     : "test",
                    root));
  std::vector<std::pair<std::string, int64_t>> files;
  bool colour = false;  // for channels 0: a colour image met so far (headers read up to the first)
  int64_t other_images = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> in_class = image_files_under((fs::path(root) / classes[c]).string(), &other_images);
    SAGAN_CHECK(!in_class.empty(), "image_folder: {}: class folder '{}' has no .png/.jpg/.jpeg files", root,
                classes[c]);
    if (channels == 0 && !colour) colour = auto_channels(in_class) == 3;
    for (auto& p : in_class) files.emplace_back(std::move(p), static_cast<int64_t>(c));
  }
  if (other_images > 0)
    warn(
        fmt::format("image_folder: {}: {} file(s) of image formats this loader does not read (.webp, .bmp, .gif, "
                    ".tif, .tiff) are left out; convert them to PNG or JPEG to train on them",
                    root, other_images));
  if (channels == 0) channels = colour ? 3 : 1;
  return std::make_shared<ImageFolder>(root, channels, std::move(classes), std::move(files));
}

std::vector<std::string> image_files_under(const std::string& dir, int64_t* other_images) {
  // Folders are walked by hand, following links to folders (a data set
  // assembled from links is common), so that a folder that cannot be read
  // is named in the error and a link back to a folder above is refused
  // instead of walked until the path is too long.
  std::vector<std::string> files;
  std::vector<fs::path> above;  // the canonical paths of the folders being walked
  std::function<void(const fs::path&)> walk = [&](const fs::path& d) {
    std::error_code ec;
    const fs::path real = fs::canonical(d, ec);
    SAGAN_CHECK(!ec, "image_folder: cannot read the folder {}: {}", d.string(), ec.message());
    SAGAN_CHECK(std::find(above.begin(), above.end(), real) == above.end(),
                "image_folder: {} leads back to {}, a folder it is inside (a link loop)", d.string(), real.string());
    above.push_back(real);
    for (const auto& e : io::list_directory(d, "image_folder")) {
      if (hidden_entry(e)) continue;
      if (e.is_directory(ec))
        walk(e.path());
      else if (e.is_regular_file(ec) && is_image_file(e.path()))
        files.push_back(e.path().string());
      else if (other_images && e.is_regular_file(ec) && is_other_image(e.path()))
        ++*other_images;
      else if (e.is_symlink(ec) && !fs::exists(e.path(), ec) && is_image_file(e.path()))
        SAGAN_FAIL("image_folder: {} is a link to {}, which does not exist", e.path().string(),
                   fs::read_symlink(e.path(), ec).string());
    }
    above.pop_back();
  };
  walk(dir);
  std::sort(files.begin(), files.end());
  return files;
}

int64_t auto_channels(const std::vector<std::string>& files) {
  const bool gray =
      std::all_of(files.begin(), files.end(), [](const std::string& f) { return io::read_image_channels(f) == 1; });
  return gray ? 1 : 3;
}

}  // namespace sagan::data
