// The descriptors this process holds open on a file, found through
// /proc/self/fd, and whether each is close-on-exec: the engine's files must
// not leak into processes a program that embeds it starts.
#pragma once
#include <fcntl.h>

#include <filesystem>
#include <string>
#include <vector>

namespace sagan::testing {

struct OpenFd {
  int fd;
  bool cloexec;
};

inline std::vector<OpenFd> open_fds_on(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target = fs::canonical(path, ec);
  std::vector<OpenFd> out;
  if (ec) return out;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    const fs::path link = fs::read_symlink(e.path(), ec);
    if (ec || link != target) continue;
    const int fd = std::stoi(e.path().filename().string());
    const int flags = ::fcntl(fd, F_GETFD);
    out.push_back({fd, flags >= 0 && (flags & FD_CLOEXEC) != 0});
  }
  return out;
}

}  // namespace sagan::testing
