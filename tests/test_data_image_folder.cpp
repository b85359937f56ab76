// Image folders: class discovery, ordering, channel conversion, bad files.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/warning.h"
#include "sagan/models/data/dataset.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

namespace {
io::Image solid(int64_t h, int64_t w, int64_t c, uint8_t v) { return io::Image(h, w, c, v); }
}  // namespace

TEST_CASE("image_folder maps sorted sub-folders to labels", "[data][data_folder]") {
  TempDir dir;
  for (const char* d : {"dog", "cat", "cat/nested", "empty_hidden/.x", ".hidden"}) fs::create_directories(dir / d);
  fs::remove_all(dir / "empty_hidden");
  io::write_png(dir / "dog/b.png", solid(4, 6, 1, 200));  // gray: expanded to RGB
  io::write_png(dir / "dog/a.PNG", solid(5, 5, 3, 10));
  io::write_png(dir / "cat/z.png", solid(3, 3, 3, 30));
  io::write_png(dir / "cat/nested/m.png", solid(2, 2, 3, 40));
  fs::copy_file(SAGAN_TEST_DATA_DIR "/io/rgb444.jpg", dir / "cat/j.jpeg");
  io::write_file_atomic(dir / "cat/readme.txt", std::string("not an image"));
  io::write_png(dir / ".hidden/h.png", solid(2, 2, 3, 0));
  // Hidden names inside a class too: a macOS resource fork (not an image)
  // and a notebook's checkpoint copy.
  io::write_file_atomic(dir / "dog/._b.png", std::string("\0\5\x16\7 resource fork"));
  fs::create_directories(dir / "cat/.ipynb_checkpoints");
  io::write_png(dir / "cat/.ipynb_checkpoints/z.png", solid(3, 3, 3, 30));

  auto ds = data::image_folder(dir.path.string());
  CHECK(ds->class_names() == std::vector<std::string>{"cat", "dog"});
  CHECK((ds->num_classes() == 2 && ds->size() == 5 && ds->channels() == 3));
  CHECK((ds->height() == 0 && ds->width() == 0));  // sizes vary
  // Files sorted by path within each class: cat/j.jpeg, cat/nested/m.png, cat/z.png, dog/a.PNG, dog/b.png.
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < ds->size(); ++i) labels.push_back(ds->get(i).label);
  CHECK(labels == std::vector<int64_t>{0, 0, 0, 1, 1});
  CHECK(ds->get(0).image.width == 16);
  CHECK(ds->get(1).image.pixels == std::vector<uint8_t>(12, 40));
  data::Example b = ds->get(4);
  CHECK((b.image.height == 4 && b.image.width == 6 && b.image.channels == 3));
  CHECK(b.image.pixels == std::vector<uint8_t>(72, 200));

  auto gray = data::image_folder(dir.path.string(), 1);
  CHECK(gray->channels() == 1);
  CHECK(gray->get(3).image.pixels == std::vector<uint8_t>(25, 10));
}

TEST_CASE("image_folder errors name the folder or file", "[data][data_folder]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(data::image_folder(dir / "missing"), Catch::Contains("missing does not exist"));
  io::write_file_atomic(dir / "file", std::string("x"));
  REQUIRE_THROWS_WITH(data::image_folder(dir / "file"), Catch::Contains("file is not a directory"));
  fs::remove(dir / "file");
  REQUIRE_THROWS_WITH(data::image_folder(dir.path.string()), Catch::Contains("no class sub-folders"));
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  io::write_png(dir / "a/1.png", solid(2, 2, 3, 1));
  REQUIRE_THROWS_WITH(data::image_folder(dir.path.string()), Catch::Contains("class folder 'b' has no"));
  io::write_file_atomic(dir / "b/broken.jpg", std::string("\xff\xd8\xff\xe0 truncated"));
  auto ds = data::image_folder(dir.path.string());
  REQUIRE_THROWS_WITH(ds->get(1), Catch::Contains(dir / "b/broken.jpg") && Catch::Contains("corrupt JPEG"));
  REQUIRE_THROWS_WITH(ds->get(2), Catch::Contains("index 2 out of range"));
  // A link to an image that is gone: named at the scan, not skipped unseen.
  fs::create_symlink(dir / "gone.png", dir / "b/link.png");
  REQUIRE_THROWS_WITH(data::image_folder(dir.path.string()),
                      Catch::Contains(dir / "b/link.png") && Catch::Contains("which does not exist"));
  fs::remove(dir / "b/link.png");
  REQUIRE_THROWS_WITH(data::image_folder(dir.path.string(), 4),
                      Catch::Contains("channels must be 1, 3 or 0 (auto), got 4"));
}

TEST_CASE("image_folder says what it leaves out and when its classes look like splits", "[data][data_folder]") {
  TempDir dir;
  for (const char* d : {"train/a", "val/a", "__MACOSX/train"}) fs::create_directories(dir / d);
  io::write_png(dir / "train/a/1.png", solid(2, 2, 3, 1));
  io::write_png(dir / "val/a/1.png", solid(2, 2, 3, 1));
  io::write_png(dir / "loose.png", solid(2, 2, 3, 1));  // beside the class folders: in no class
  io::write_file_atomic(dir / "train/a/2.webp", std::string("RIFF"));
  io::write_file_atomic(dir / "val/a/3.BMP", std::string("BM"));
  io::write_file_atomic(dir / "__MACOSX/train/._1.png", std::string("\0\5\x16\7 resource fork"));
  std::vector<std::string> said;
  const WarningHandler before = set_warning_handler([&](const std::string& text) { said.push_back(text); });
  std::shared_ptr<data::Dataset> ds;
  try {
    ds = data::image_folder(dir.path.string());
  } catch (...) {
    set_warning_handler(before);
    throw;
  }
  set_warning_handler(before);
  CHECK(ds->class_names() == std::vector<std::string>{"train", "val"});  // no __MACOSX class
  CHECK(ds->size() == 2);
  REQUIRE(said.size() == 3);
  CHECK_THAT(said[0], Catch::Contains("1 image file(s) directly in it") && Catch::Contains("left out"));
  CHECK_THAT(said[1], Catch::Contains("'train' and 'val'") && Catch::Contains(dir / "train"));
  CHECK_THAT(said[2], Catch::Contains("2 file(s) of image formats this loader does not read"));
}

TEST_CASE("image_folder follows links to folders and refuses a link loop, naming it", "[data][data_folder]") {
  TempDir dir;
  fs::create_directories(dir / "data/a");
  fs::create_directories(dir / "elsewhere/more");
  io::write_png(dir / "data/a/1.png", solid(2, 2, 3, 1));
  io::write_png(dir / "elsewhere/more/2.png", solid(2, 2, 3, 2));
  fs::create_directory_symlink(dir / "elsewhere", dir / "data/a/linked");
  auto ds = data::image_folder(dir / "data");
  CHECK(ds->size() == 2);                                 // the linked folder's image counts
  fs::create_directory_symlink("..", dir / "data/a/up");  // a/up -> data: inside itself
  REQUIRE_THROWS_WITH(data::image_folder(dir / "data"), Catch::Contains("image_folder: ") &&
                                                            Catch::Contains("a/up/a leads back to") &&
                                                            Catch::Contains("a link loop"));
}

TEST_CASE("image_folder channels auto: 1 when every image is grayscale, else 3", "[data][data_folder]") {
  TempDir dir;
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  io::write_png(dir / "a/1.png", solid(4, 4, 1, 10));
  fs::copy_file(SAGAN_TEST_DATA_DIR "/io/gray.jpg", dir / "b/2.jpg");
  fs::copy_file(SAGAN_TEST_DATA_DIR "/io/gray_alpha.png", dir / "b/3.png");
  auto ds = data::image_folder(dir.path.string(), 0);
  CHECK(ds->channels() == 1);
  for (int64_t i = 0; i < ds->size(); ++i) CHECK(ds->get(i).image.channels == 1);
  // One colour image (a palette PNG decodes to RGB) makes the folder RGB, gray images expanded.
  fs::copy_file(SAGAN_TEST_DATA_DIR "/io/palette.png", dir / "b/4.png");
  ds = data::image_folder(dir.path.string(), 0);
  CHECK(ds->channels() == 3);
  CHECK(ds->get(0).image.pixels == std::vector<uint8_t>(48, 10));
  // Headers are read up to the first colour image: a corrupt one before it is named.
  fs::remove(dir / "b/4.png");
  io::write_file_atomic(dir / "b/0.jpg", std::string("\xff\xd8\xff\xe0 truncated"));
  REQUIRE_THROWS_WITH(data::image_folder(dir.path.string(), 0),
                      Catch::Contains(dir / "b/0.jpg") && Catch::Contains("corrupt JPEG"));
}
