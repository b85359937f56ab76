// Metrics CSV: header from the first row, strict columns, append on resume.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "sagan/core/io/atomic_file.h"
#include "sagan/core/io/csv.h"
#include "tests/support/open_fds.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;

TEST_CASE("CsvWriter writes a header and flushes every row", "[io][io_csv]") {
  TempDir dir;
  std::string p = dir / "metrics.csv";
  io::CsvWriter w(p, /*append=*/false);
  w.write({{"step", 100}, {"loss_d", 0.25}, {"loss_g", 1.5f}, {"note", "a,b \"q\""}});
  CHECK(read_text(p) == "step,loss_d,loss_g,note\n100,0.25,1.5,\"a,b \"\"q\"\"\"\n");   // visible before close
  w.write({{"loss_g", -2.0}, {"note", ""}, {"step", int64_t(200)}, {"loss_d", 1e-7}});  // any order
  CHECK(read_text(p) == "step,loss_d,loss_g,note\n100,0.25,1.5,\"a,b \"\"q\"\"\"\n200,1e-07,-2,\n");
  CHECK(w.columns() == std::vector<std::string>{"step", "loss_d", "loss_g", "note"});
  REQUIRE_THROWS_WITH(w.write({{"step", 1}, {"loss_d", 1}, {"loss_g", 1}}),
                      Catch::Contains(p) && Catch::Contains("row has 3 columns"));
  REQUIRE_THROWS_WITH(w.write({{"step", 1}, {"loss_d", 1}, {"loss_g", 1}, {"extra", 1}}),
                      Catch::Contains("row lacks column 'note'"));
  io::CsvWriter dup(dir / "dup.csv", false);
  REQUIRE_THROWS_WITH(dup.write({{"a", 1}, {"a", 2}}), Catch::Contains("column 'a' appears twice"));
}

TEST_CASE("CsvWriter's open file is close-on-exec", "[io][io_csv]") {
  // It stays open for a whole run: a child process that a program embedding
  // the engine starts must not inherit it.
  TempDir dir;
  const std::string p = dir / "metrics.csv";
  for (bool append : {false, true}) {
    io::CsvWriter w(p, append);
    w.write({{"step", 1}});
    const auto fds = open_fds_on(p);
    REQUIRE(fds.size() == 1);
    CHECK(fds[0].cloexec);
  }
}

TEST_CASE("CsvWriter appends when resuming with the same header", "[io][io_csv]") {
  TempDir dir;
  std::string p = dir / "metrics.csv";
  {
    io::CsvWriter w(p, false);
    w.write({{"step", 1}, {"fid", 50.5}});
    w.write({{"step", 2}, {"fid", 40.25}});
  }
  {
    io::CsvWriter w(p, /*append=*/true);
    w.write({{"step", 3}, {"fid", 30}});
  }
  CHECK(read_text(p) == "step,fid\n1,50.5\n2,40.25\n3,30\n");
  // A row cut short by a crash is dropped before appending.
  io::write_file_atomic(p, std::string("step,fid\n1,50.5\n2,4"));
  {
    io::CsvWriter w(p, true);
    w.write({{"step", 2}, {"fid", 41}});
  }
  CHECK(read_text(p) == "step,fid\n1,50.5\n2,41\n");
  // Another first column (another kind of file) refuses to append and leaves
  // the file alone.
  {
    io::CsvWriter w(p, true);
    REQUIRE_THROWS_WITH(w.write({{"epoch", 4}, {"fid", 8.5}}),
                        Catch::Contains(p) && Catch::Contains("'step,fid'") && Catch::Contains("'epoch,fid'"));
  }
  CHECK(read_text(p) == "step,fid\n1,50.5\n2,41\n");
  // Columns added (a setting changed on resume): earlier rows get blank cells.
  {
    io::CsvWriter w(p, true);
    w.write({{"step", 3}, {"skipped_steps", 1}, {"fid", 39}});
  }
  CHECK(read_text(p) == "step,skipped_steps,fid\n1,,50.5\n2,,41\n3,1,39\n");
  // Columns dropped (a setting turned off on resume): they stay, blank, after
  // this run's columns; a row must still have all of this run's.
  {
    io::CsvWriter w(p, true);
    w.write({{"step", 4}, {"fid", 38}});
    w.write({{"fid", 37}, {"step", 5}});
    REQUIRE_THROWS_WITH(w.write({{"step", 6}, {"skipped_steps", 2}}), Catch::Contains(p) && Catch::Contains("fid"));
  }
  CHECK(read_text(p) == "step,fid,skipped_steps\n1,50.5,\n2,41,\n3,39,1\n4,38,\n5,37,\n");
  // append on a missing file or append = false both start afresh.
  std::string q = dir / "new.csv";
  {
    io::CsvWriter w(q, true);
    w.write({{"x", 1}});
  }
  CHECK(read_text(q) == "x\n1\n");
  {
    io::CsvWriter w(q, false);
    w.write({{"y", 2}});
  }
  CHECK(read_text(q) == "y\n2\n");
  REQUIRE_THROWS_WITH(io::CsvWriter(dir / "no/dir.csv", false), Catch::Contains("no/dir.csv"));
}
