// Atomic writes: content lands whole, failures leave the old file and no
// temporaries, errors name the path and the OS reason.
#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>
#include <atomic>

#include "sagan/core/error.h"
#include "sagan/core/io/atomic_file.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

TEST_CASE("write_file_atomic writes and replaces whole files", "[io][io_atomic]") {
  TempDir dir;
  std::string p = dir / "a.txt";
  io::write_file_atomic(p, std::string("first version"));
  CHECK(read_text(p) == "first version");
  io::write_file_atomic(p, std::string("second"));
  CHECK(read_text(p) == "second");
  io::write_file_atomic(p, [](std::FILE* f) {
    for (int i = 0; i < 3; ++i) std::fprintf(f, "line %d\n", i);
  });
  CHECK(read_text(p) == "line 0\nline 1\nline 2\n");
  io::write_file_atomic(p, nullptr, 0);
  CHECK(read_text(p).empty());
  CHECK(dir.count() == 1);  // no temporaries left behind
  CHECK((fs::status(p).permissions() & fs::perms::others_read) != fs::perms::none);
}

namespace {
// Sets the process's umask for its lifetime.
struct UmaskScope {
  mode_t old;
  explicit UmaskScope(mode_t m) : old(::umask(m)) {}
  ~UmaskScope() { ::umask(old); }
};
mode_t mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}
}  // namespace

TEST_CASE("atomic writes honour the umask and keep a replaced file's mode", "[io][io_atomic]") {
  // A program embedding the engine under umask 077 expects private files;
  // the temporary's mode used to be set to 0644 whatever the umask.
  TempDir dir;
  const std::string p = dir / "private.bin", q = dir / "shared.bin";
  {
    UmaskScope u(077);
    io::write_file_atomic(p, std::string("x"));
  }
  CHECK(mode_of(p) == 0600);
  {
    UmaskScope u(022);
    io::write_file_atomic(q, std::string("x"));
  }
  CHECK(mode_of(q) == 0644);
  ::chmod(p.c_str(), 0640);
  {
    UmaskScope u(077);
    io::write_file_atomic(p, std::string("y"));  // replaced: keeps its mode
  }
  CHECK(mode_of(p) == 0640);
}

TEST_CASE("an atomic write's temporary is close-on-exec", "[io][io_atomic]") {
  // A large checkpoint takes a while to write; a process started meanwhile
  // by another thread of the embedding program must not inherit the file.
  TempDir dir;
  bool cloexec = false;
  io::write_file_atomic(dir / "ck.bin", [&](std::FILE* f) {
    const int flags = ::fcntl(::fileno(f), F_GETFD);
    cloexec = flags >= 0 && (flags & FD_CLOEXEC) != 0;
  });
  CHECK(cloexec);
}

TEST_CASE("a failed atomic write leaves the old file and no temporary", "[io][io_atomic]") {
  TempDir dir;
  std::string p = dir / "ckpt.bin";
  io::write_file_atomic(p, std::string("old content"));
  REQUIRE_THROWS_WITH(io::write_file_atomic(p,
                                            [](std::FILE* f) {
                                              std::fputs("partial new content", f);
                                              std::fflush(f);
                                              throw Error("writer: simulated failure");
                                            }),
                      Catch::Contains("simulated failure"));
  CHECK(read_text(p) == "old content");
  CHECK(dir.count() == 1);
}

TEST_CASE("atomic write errors name the path and errno text", "[io][io_atomic]") {
  TempDir dir;
  std::string p = dir / "missing_dir/x.bin";
  REQUIRE_THROWS_WITH(io::write_file_atomic(p, std::string("x")),
                      Catch::Contains(p) && Catch::Contains("No such file or directory"));
  REQUIRE_THROWS_WITH(io::read_file(dir / "nope"), Catch::Contains("nope") && Catch::Contains("No such file"));
  // Writing over a directory is refused before a temporary is made.
  fs::create_directory(dir / "sub");
  fs::create_directory(dir / "sub/inner");
  REQUIRE_THROWS_WITH(io::write_file_atomic(dir / "sub", std::string("x")),
                      "write_file_atomic: " + dir / "sub" + ": is a directory, not a regular file; it is not replaced");
  CHECK(dir.count() == 1);
  // A directory appearing at the path during the write fails the rename,
  // which names errno and removes the temporary.
  const std::string late = dir / "late";
  REQUIRE_THROWS_WITH(io::write_file_atomic(late,
                                            [&](std::FILE* f) {
                                              std::fputs("x", f);
                                              fs::create_directory(late);
                                              fs::create_directory(late + "/inner");
                                            }),
                      Catch::Contains("rename") && Catch::Contains(late));
  CHECK(dir.count() == 2);  // sub and late, no temporary
}

TEST_CASE("threads probing one folder for write access at once do not fail each other", "[io][io_atomic]") {
  // The probe file was named by process id alone, so a second thread's
  // O_EXCL open found the first one's file and reported the folder unwritable.
  TempDir dir;
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        try {
          io::check_writable_dir(dir.path.string(), "probe");
        } catch (const std::exception& e) {
          if (failures++ == 0) {
            std::lock_guard lock(mu);
            first_error = e.what();
          }
        }
      }
    });
  for (std::thread& t : threads) t.join();
  INFO(first_error);
  CHECK(failures == 0);
  CHECK(dir.count() == 0);  // every probe removed
}

TEST_CASE("a full disk is reported in the whole write's bytes, not a piece's", "[io][io_atomic]") {
  std::FILE* f = std::fopen("/dev/full", "wb");  // every write: ENOSPC
  if (!f) {
    WARN("no /dev/full here: the full-disk message is not checked");
    return;
  }
  const std::vector<char> head(100), piece(1 << 20);
  io::write_all(f, head.data(), head.size(), "/dev/full");  // still in the stream's buffer
  const uint64_t total = head.size() + piece.size();
  REQUIRE_THROWS_WITH(io::write_all(f, piece.data(), piece.size(), "/dev/full", head.size(), total),
                      Catch::Contains(fmt::format("of {} bytes", total)) && Catch::Contains("No space left on device"));
  std::fclose(f);
}

TEST_CASE("a file's folder must exist to be written to: none is made", "[io][io_atomic]") {
  TempDir dir;
  const fs::path missing = dir.path / "typo" / "d";
  REQUIRE_THROWS_WITH(io::check_writable_file((missing / "x.png").string(), "-o x"),
                      "-o x: the folder " + missing.string() + " does not exist; create it first");
  CHECK_FALSE(fs::exists(dir.path / "typo"));
  io::write_file_atomic(dir / "plain", std::string("a file"));
  REQUIRE_THROWS_WITH(io::check_writable_file((dir.path / "plain" / "x.png").string(), "-o y"),
                      "-o y: " + dir / "plain" + " is not a folder");
  io::check_writable_file(dir / "x.png", "-o z");
  CHECK_FALSE(fs::exists(dir.path / "x.png"));
  // A folder option is made, with its parents.
  io::check_writable_dir((missing / "e").string(), "--separate e");
  CHECK(fs::is_directory(missing / "e"));
}

TEST_CASE("a link is written through and a device or pipe is never replaced", "[io][io_atomic]") {
  TempDir dir;
  // A relative link into a sub-folder: the target is replaced, the link stays a link.
  fs::create_directory(dir.path / "data");
  io::write_file_atomic(dir / "data/target.json", std::string("old"));
  fs::create_symlink("data/target.json", dir.path / "link.json");
  io::check_writable_file(dir / "link.json", "--json link.json");
  io::write_file_atomic(dir / "link.json", std::string("new"));
  CHECK(fs::is_symlink(dir.path / "link.json"));
  const std::vector<uint8_t> got = io::read_file(dir / "data/target.json");
  CHECK(std::string(got.begin(), got.end()) == "new");
  // A dangling link makes the file it names.
  fs::create_symlink("data/made.json", dir.path / "dangling.json");
  io::write_file_atomic(dir / "dangling.json", std::string("made"));
  CHECK(fs::is_regular_file(dir.path / "data/made.json"));
  CHECK(fs::is_symlink(dir.path / "dangling.json"));
  // An absolute link to a link: the chain is followed to the file.
  fs::create_symlink(fs::absolute(dir.path / "link.json"), dir.path / "chain.json");
  io::write_file_atomic(dir / "chain.json", std::string("chained"));
  const std::vector<uint8_t> chained = io::read_file(dir / "data/target.json");
  CHECK(std::string(chained.begin(), chained.end()) == "chained");
  // A link into a missing folder is checked as its target: refused before the work.
  fs::create_symlink("missing/x.json", dir.path / "to_missing.json");
  REQUIRE_THROWS_WITH(io::check_writable_file(dir / "to_missing.json", "--json to_missing.json"),
                      "--json to_missing.json: the folder " + dir / "missing" + " does not exist; create it first");
  // A loop is named by the caller's words.
  fs::create_symlink("loop_b", dir.path / "loop_a");
  fs::create_symlink("loop_a", dir.path / "loop_b");
  REQUIRE_THROWS_WITH(io::check_writable_file(dir / "loop_a", "-o loop_a"),
                      "-o loop_a: too many levels of symbolic links");
  // A pipe (as /dev/full or /dev/stdout would be) is refused, before the work and at the write.
  const std::string fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE_THROWS_WITH(io::check_writable_file(fifo, "--json pipe"),
                      "--json pipe: is a pipe, not a regular file; give a file name");
  REQUIRE_THROWS_WITH(io::write_file_atomic(fifo, std::string("x")),
                      "write_file_atomic: " + fifo + ": is a pipe, not a regular file; it is not replaced");
  CHECK(fs::is_fifo(fifo));
}
