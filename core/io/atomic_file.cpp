// Temp-file + fsync + rename + directory fsync; see atomic_file.h for why.
#include "sagan/core/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sagan/core/error.h"

namespace sagan::io {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_dir(const std::string& path) {
  std::filesystem::path p(path);
  std::string dir = p.parent_path().string();
  return dir.empty() ? "." : dir;
}

// Owns the temporary until it has been renamed into place.
struct TempFile {
  std::string path;
  std::FILE* file = nullptr;
  bool committed = false;
  ~TempFile() {
    if (file) std::fclose(file);
    if (!committed && !path.empty()) ::unlink(path.c_str());
  }
};

// The process's file-creation mask, read without changing it: umask(2)
// only sets it, and setting it to read it back would race with other
// threads creating files. Linux has it in /proc/self/status since 4.7;
// elsewhere the usual 022 is assumed.
mode_t current_umask() {
  std::FILE* f = std::fopen("/proc/self/status", "re");
  if (!f) return 022;
  unsigned mask = 022;
  char line[256];
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "Umask: %o", &mask) == 1) break;
  std::fclose(f);
  return static_cast<mode_t>(mask & 0777);
}

void fsync_dir(const std::string& dir, const std::string& target) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  SAGAN_CHECK(fd >= 0, "write_file_atomic: {}: cannot open directory {} to sync it: {}", target, dir,
              errno_text(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot sync directories (EINVAL); the rename itself
  // has happened, so only real I/O errors are reported.
  SAGAN_CHECK(rc == 0 || err == EINVAL || err == EROFS, "write_file_atomic: {}: fsync of directory {} failed: {}",
              target, dir, errno_text(err));
}

// The file a write to `path` must replace: a symbolic link's target (links
// followed, relative ones from their own folder), so that the rename
// replaces the file the link names and the link stays; `path` itself
// otherwise. A dangling link gives the file it would name.
// `what` leads an error ("-o out.png").
std::string resolve_links(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  fs::path p(path);
  std::error_code ec;
  for (int hops = 0; fs::is_symlink(fs::symlink_status(p, ec)); ++hops) {
    SAGAN_CHECK(hops < 40, "{}: too many levels of symbolic links", what);
    const fs::path target = fs::read_symlink(p, ec);
    SAGAN_CHECK(!ec, "{}: cannot read the link {}: {}", what, p.string(), ec.message());
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  return p.string();
}

// What an existing path that is not a regular file is ("a directory", "a
// device", ...; a rename would replace it, not write to it, e.g. /dev/full);
// "" for a regular file or none.
std::string non_regular_kind(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st) || fs::is_regular_file(st)) return "";
  if (fs::is_directory(st)) return "a directory";
  if (fs::is_character_file(st) || fs::is_block_file(st)) return "a device";
  if (fs::is_fifo(st)) return "a pipe";
  if (fs::is_socket(st)) return "a socket";
  return "not a regular file";
}

}  // namespace

void write_all(std::FILE* f, const void* data, size_t size, const std::string& path, uint64_t done, uint64_t total) {
  if (size == 0) return;
  size_t n = std::fwrite(data, 1, size, f);
  SAGAN_CHECK(n == size, "write: {}: wrote {} of {} bytes: {}", path, done + n, total ? total : done + size,
              errno_text(errno));
}

void write_file_atomic(const std::string& link_or_path, const std::function<void(std::FILE*)>& writer) {
  SAGAN_CHECK(!link_or_path.empty(), "write_file_atomic: empty path");
  const std::string path = resolve_links(link_or_path, "write_file_atomic: " + link_or_path);
  const std::string kind = non_regular_kind(path);
  SAGAN_CHECK(kind.empty(), "write_file_atomic: {}: is {}, not a regular file; it is not replaced", link_or_path, kind);
  std::string dir = parent_dir(path);
  std::string name = std::filesystem::path(path).filename().string();
  SAGAN_CHECK(!name.empty(), "write_file_atomic: {}: path names a directory", path);

  TempFile tmp;
  std::string templ = dir + "/." + name + ".tmp.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  // O_CLOEXEC, as every descriptor the engine opens: a program that embeds
  // it and starts processes from another thread must not hand them this file.
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  SAGAN_CHECK(fd >= 0, "write_file_atomic: {}: cannot create a temporary file in {}: {}", path, dir, errno_text(errno));
  tmp.path = buf.data();
  // mkstemp creates 0600; keep an existing target's mode, else give what
  // open(path, O_CREAT, 0666) would: the process's umask applies (a program
  // running under umask 077 gets private checkpoints, not 0644 ones).
  struct stat st {};
  mode_t mode = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : (0666 & ~current_umask());
  ::fchmod(fd, mode);
  tmp.file = ::fdopen(fd, "wb");
  if (!tmp.file) {
    int err = errno;
    ::close(fd);
    SAGAN_FAIL("write_file_atomic: {}: fdopen failed: {}", path, errno_text(err));
  }

  writer(tmp.file);

  SAGAN_CHECK(std::fflush(tmp.file) == 0 && !std::ferror(tmp.file), "write_file_atomic: {}: write failed: {}", path,
              errno_text(errno));
  SAGAN_CHECK(::fsync(::fileno(tmp.file)) == 0, "write_file_atomic: {}: fsync failed: {}", path, errno_text(errno));
  int rc = std::fclose(tmp.file);
  tmp.file = nullptr;
  SAGAN_CHECK(rc == 0, "write_file_atomic: {}: close failed: {}", path, errno_text(errno));
  SAGAN_CHECK(::rename(tmp.path.c_str(), path.c_str()) == 0, "write_file_atomic: {}: rename from {} failed: {}", path,
              tmp.path, errno_text(errno));
  tmp.committed = true;
  fsync_dir(dir, path);
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  write_file_atomic(path, [&](std::FILE* f) { write_all(f, data, size, path); });
}

std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");  // e: O_CLOEXEC (see write_file_atomic)
  SAGAN_CHECK(f != nullptr, "read_file: {}: {}", path, errno_text(errno));
  std::vector<uint8_t> out;
  struct stat st {};
  if (::fstat(::fileno(f), &st) == 0 && st.st_size > 0)
    out.reserve(std::min(static_cast<size_t>(st.st_size), max_bytes));
  uint8_t chunk[1 << 16];
  size_t n;
  while (out.size() < max_bytes && (n = std::fread(chunk, 1, std::min(sizeof(chunk), max_bytes - out.size()), f)) > 0)
    out.insert(out.end(), chunk, chunk + n);
  bool bad = std::ferror(f);
  int err = errno;
  std::fclose(f);
  SAGAN_CHECK(!bad, "read_file: {}: read failed: {}", path, errno_text(err));
  return out;
}

void check_writable_dir(const std::string& dir, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  SAGAN_CHECK(!ec, "{}: cannot create the directory: {}", what, ec.message());
  SAGAN_CHECK(fs::is_directory(dir, ec), "{}: not a directory", what);
  // A unique name (mkostemp): a name by process id alone made two threads
  // probing the same folder at once fail each other's O_EXCL.
  std::string probe = (fs::path(dir) / ".write_test.XXXXXX").string();
  const int fd = ::mkostemp(probe.data(), O_CLOEXEC);
  SAGAN_CHECK(fd >= 0, "{}: cannot write there: {}", what, std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

void check_writable_file(const std::string& link_or_path, const std::string& what) {
  namespace fs = std::filesystem;
  SAGAN_CHECK(!link_or_path.empty(), "{}: an empty file name", what);
  std::error_code ec;
  const std::string kind = non_regular_kind(link_or_path);  // a directory, a device, a pipe
  SAGAN_CHECK(kind.empty(), "{}: is {}, not a regular file; give a file name", what, kind);
  // A link is written through (write_file_atomic): its target's folder counts.
  const std::string path = resolve_links(link_or_path, what);
  const fs::path parent = fs::path(path).parent_path();
  // Not made: a typo in the folder would leave new folders behind, made
  // before the tool has done (or failed at) anything.
  if (!parent.empty()) {
    SAGAN_CHECK(fs::exists(parent, ec), "{}: the folder {} does not exist; create it first", what, parent.string());
    SAGAN_CHECK(fs::is_directory(parent, ec), "{}: {} is not a folder", what, parent.string());
  }
  check_writable_dir(parent.empty() ? "." : parent.string(), what);
}

std::vector<std::filesystem::directory_entry> list_directory(const std::filesystem::path& dir,
                                                             const std::string& what) {
  std::error_code ec;
  std::vector<std::filesystem::directory_entry> out;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(*it);
  SAGAN_CHECK(!ec, "{}: cannot read the folder {}: {}", what, dir.string(), ec.message());
  return out;
}

}  // namespace sagan::io
