// Shared pieces of the command-line tools: error reporting with exit codes,
// option parsing that several tools share.
#pragma once
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::cli {

// Runs body, turning exceptions into "tool: error: message" on stderr and a
// non-zero exit code (1 for engine errors, 2 for unexpected ones).
int guarded_main(const char* tool, const std::function<int()>& body);

// What parsing a command line gave: go on (Run), --help (text: the help),
// or an error (text: CLI11's message and where to find the options).
struct ParseOutcome {
  enum Kind { Run, Help, Error } kind = Run;
  std::string text;
};

// Parses argv with `app`. Every numeric option is checked as written before CLI11 converts it: an
// integer in decimal within its type ("010" is 10, not CLI11's octal 8;
// "-1" is refused for an unsigned seed, not read as 2^64 - 1; 2^63 is
// refused, not clamped), a real number finite.
ParseOutcome parse_command_line(const char* tool, CLI::App& app, int argc, char** argv);

// A tool's main: parses argv with `app` (--help prints the help and exits
// 0; a parse error is reported as every other error, "tool: error: ...",
// exit 1), then calls run() under guarded_main.
int parse_and_run(const char* tool, CLI::App& app, int argc, char** argv, const std::function<int()>& run);

// Progress of long work on images on stderr: "\r  embedding generated:
// 3400/10000  120 img/s  eta 0:00:55" (`what` = "embedding generated"),
// redrawn on a terminal, one line per tenth in a log; nothing when off.
class ProgressLine {
 public:
  ProgressLine(std::string what, bool on);
  void operator()(int64_t done, int64_t total);

 private:
  std::string what_;
  bool on_, tty_;
  int64_t last_tenth_ = -1;
  std::chrono::steady_clock::time_point t0_;
};

// Refuses an empty value of a path option, which would read as the option
// left out (`--resume "$RUN"` with RUN unset).
const CLI::Validator& not_empty();

// --classes "0,3,7": ids checked against the K classes of the model in
// `checkpoint`; empty text means every class in turn (none when K = 0).
std::vector<int64_t> parse_class_ids(const std::string& text, int64_t K, const std::string& checkpoint);

// An image output the tool writes as PNG: the name must say so (a .jpg
// name would hold PNG bytes), and its folder must exist and take a file,
// before any work.
void check_png_output(const std::string& path, const std::string& what);

// An output that is one of the files the command reads would be replaced by
// it (sagan-export -o naming the checkpoint it exports destroyed it). Each
// input is (how to name it, path); a run directory stands for its newest
// checkpoint, the file a tool reads from it. Checked before any work.
void check_output_not_input(const std::string& out, const std::string& what,
                            const std::vector<std::pair<std::string, std::string>>& inputs);

// (n, z_dim) float32 latents on `device` from N(0, I) with seed `seed`, each
// component redrawn while |z| > truncation (0 = off): the same images in
// sagan-sample and sagan-attention for the same options.
Tensor sample_latents(int64_t n, int64_t z_dim, uint64_t seed, double truncation, Device device);

}  // namespace sagan::cli
