#include "sagan/models/data/dataset.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "sagan/core/hash.h"

namespace sagan::data {

void Dataset::check_index(int64_t i) const {
  SAGAN_CHECK(i >= 0 && i < size(), "{}: index {} out of range for {} examples", name(), i, size());
}

std::string data_fingerprint(const Dataset& ds) {
  namespace fs = std::filesystem;
  const std::vector<std::string> files = ds.files();
  if (files.empty()) return "in memory";
  uint64_t bytes = 0, hash = kFnv1aOffset;
  fs::file_time_type newest = fs::file_time_type::min();
  fs::path dir;  // the deepest directory holding every file
  std::string raw_parent;
  fs::path parent;  // raw_parent made canonical: once per directory, not per file (folders of 100k images)
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path raw(files[i]);
    if (i == 0 || raw.parent_path().string() != raw_parent) {
      raw_parent = raw.parent_path().string();
      std::error_code ec;
      parent = fs::weakly_canonical(fs::absolute(raw).parent_path(), ec);
      if (ec) parent = fs::absolute(raw).parent_path();
      if (i == 0) {
        dir = parent;
      } else {
        fs::path common;
        for (auto a = dir.begin(), b = parent.begin(); a != dir.end() && b != parent.end() && *a == *b; ++a, ++b)
          common /= *a;
        dir = common;
      }
    }
    const fs::path p = parent / raw.filename();
    // A file gone since it was read counts as size 0, time 0: still a key.
    std::error_code ec;
    uint64_t size = fs::file_size(p, ec);
    if (ec) size = 0;
    fs::file_time_type t = fs::last_write_time(p, ec);
    if (ec) t = {};
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    bytes += size;
    newest = std::max(newest, t);
    const std::string ps = p.string();
    hash = fnv1a64(ps.data(), ps.size() + 1, hash);  // with the NUL: "ab"+"c" differs from "a"+"bc"
    hash = fnv1a64(&size, sizeof size, hash);
    hash = fnv1a64(&ns, sizeof ns, hash);
  }
  const std::time_t tt = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::file_clock::to_sys(newest)));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}: {} file(s), {} bytes, newest {} UTC, #{:016x}", dir.string(), files.size(), bytes, when,
                     hash);
}

}  // namespace sagan::data
