// Scratch files for the I/O and data tests: a fresh directory per TempDir,
// removed with everything in it when the TempDir goes out of scope.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "sagan/core/error.h"
#include "sagan/core/io/atomic_file.h"

namespace sagan::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "sagan_test_XXXXXX").string();
    SAGAN_CHECK(::mkdtemp(t.data()) != nullptr, "TempDir: cannot create {}", t);
    path = t;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;  // a destructor must not throw; a leftover scratch dir is harmless
    std::filesystem::remove_all(path, ignored);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  size_t count() const {
    using It = std::filesystem::directory_iterator;
    return static_cast<size_t>(std::distance(It(path), It()));
  }
};

inline std::string read_text(const std::string& path) {
  std::vector<uint8_t> b = io::read_file(path);
  return std::string(b.begin(), b.end());
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  io::write_file_atomic(path, b.data(), b.size());
}

}  // namespace sagan::testing
