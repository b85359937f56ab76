// Crash-safe file writes: data goes to a temporary file in the target's
// directory, is fsync'ed, renamed over the target and the directory is
// fsync'ed. A reader (or a crash) sees either the old file or the complete
// new one, never a torn mix; on failure the temporary is removed and the old
// file is untouched. Every file the engine writes whole (checkpoints,
// configs, images) goes through here. A new file gets the mode open(2)
// would give it (0666 less the process's umask); a replaced one keeps its
// mode. A symbolic link is written through: its target is replaced and the
// link stays. An existing path that is not a regular file (a device, a pipe)
// is refused, never replaced.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace sagan::io {

void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Streaming variant: `writer` writes the content to the FILE* (which must not
// be closed). A throw from writer, or any stream error, aborts the write.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer);

// fwrite that throws (naming `path`) unless every byte was written. A piece
// of a larger write (a tensor of a checkpoint) passes the bytes written
// before it, `done`, and the whole write's `total`, so that a full disk is
// reported as "wrote 4100 of 52428808 bytes", not in the piece's numbers.
void write_all(std::FILE* f, const void* data, size_t size, const std::string& path, uint64_t done = 0,
               uint64_t total = 0);

// Whole file into memory, or its first max_bytes when that is smaller (a
// header probe); throws naming the path and errno text.
std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes = SIZE_MAX);

// The entries of a folder; a folder that cannot be read (permissions, a
// vanished mount) throws "<what>: cannot read the folder <dir>: <reason>"
// instead of the standard library's filesystem_error, which names no
// owner and sometimes no path.
std::vector<std::filesystem::directory_entry> list_directory(const std::filesystem::path& dir, const std::string& what);

// Whether `path` is `dir` or lies below it, comparing the paths as given
// element by element: normalise both alike first (lexically_normal, or
// weakly_canonical to see through links).
inline bool path_within(const std::filesystem::path& dir, const std::filesystem::path& path) {
  return std::mismatch(dir.begin(), dir.end(), path.begin(), path.end()).first == dir.end();
}

// Checks before any long work that a later write will not fail for want of
// a place: makes `dir` (with its parents) and creates and removes a file in
// it, since permission bits do not tell (root writes anyway, a read-only
// mount refuses everyone). `what` leads the error ("--run-dir runs/x").
void check_writable_dir(const std::string& dir, const std::string& what);
// The same for a file to be written later: its folder must exist (it is
// not made) and be writable, and the path must be neither a directory nor
// another non-regular file (a device, a pipe); a link's target counts.
void check_writable_file(const std::string& path, const std::string& what);

}  // namespace sagan::io
