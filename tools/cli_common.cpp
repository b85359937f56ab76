#include "tools/cli_common.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <sstream>
#include <string_view>

#include "sagan/core/env_setting.h"
#include "sagan/core/error.h"
#include "sagan/core/io/atomic_file.h"
#include "sagan/core/rng.h"
#include "sagan/core/warning.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"

namespace sagan::cli {

int guarded_main(const char* tool, const std::function<int()>& body) {
  // The engine's warnings (sagan::warn) name the tool as its other messages
  // do: "sagan-train: warning: ...", not a bare "warning: ...". Installed
  // before body starts any thread that could warn.
  const std::string name = tool;
  set_warning_handler([name](const std::string& text) { fmt::print(stderr, "{}: warning: {}\n", name, text); });
  try {
    return body();
  } catch (const sagan::Error& e) {
    fmt::print(stderr, "{}: error: {}\n", tool, e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    // Settings far beyond the machine (--ch 100000) end here, not in a
    // message that names only the C++ type.
    fmt::print(stderr,
               "{}: error: out of memory: an allocation of host memory failed; smaller settings (batch size, "
               "widths, resolution) need less\n",
               tool);
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: unexpected error: {}\n", tool, e.what());
    return 2;
  }
}

namespace {
// CLI11 writes a flag pair as "--x,--no-x{false}", which reads as "default
// false" whatever the default is; the names alone, the help text says the
// default.
class Formatter : public CLI::Formatter {
 public:
  std::string make_option_name(const CLI::Option* opt, bool positional) const override {
    const std::string names = CLI::Formatter::make_option_name(opt, positional);
    std::string out;
    bool in_braces = false;
    for (char c : names) {
      if (c == '{')
        in_braces = true;
      else if (c == '}')
        in_braces = false;
      else if (!in_braces)
        out += c;
    }
    return out;
  }
};

// One comma-separated part of an integer option's text, as decimal text
// CLI11 reads back unchanged, or "" when it is not a decimal integer of the
// type (signed: int64; unsigned: uint64).
template <class T>
std::string canonical_integer(std::string_view part) {
  if (!part.empty() && part[0] == '+') {
    part.remove_prefix(1);
    if (!part.empty() && part[0] == '-') return "";  // "+-3"
  }
  T v = 0;
  const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
  if (part.empty() || ec != std::errc() || end != part.data() + part.size()) return "";
  return std::to_string(v);
}

template <class T>
CLI::Validator integer_validator(const char* range, bool list) {
  return CLI::Validator(
      [range, list](std::string& text) -> std::string {
        std::string out;
        for (size_t at = 0;;) {  // "8,16": each part (sagan-train's --g-attn)
          const size_t comma = std::min(text.find(',', at), text.size());
          const std::string part = canonical_integer<T>(std::string_view(text).substr(at, comma - at));
          if (part.empty())
            return fmt::format("expected {} in {}, got '{}'", list ? "integers (several: 8 16 or 8,16)" : "an integer",
                               range, text);
          out += part;
          if (comma == text.size()) break;
          out += ',';
          at = comma + 1;
        }
        text = out;  // "010" would be octal 8 to CLI11
        return "";
      },
      "");
}

CLI::Validator finite_number_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
          return fmt::format("expected a finite number, got '{}'", text);
        // 1e-400 would read as 0 (a subnormal double is still a number).
        if (errno == ERANGE && v == 0.0) return fmt::format("'{}' is too small for a double; it would read as 0", text);
        return "";
      },
      "");
}

void check_numbers_strictly(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    // CLI11 appends the descriptions of an option's checks ("INT:POSITIVE").
    std::string type = opt->get_type_name();
    type = type.substr(0, type.find(':'));
    const bool list = opt->get_expected_max() > 1;
    if (type == "INT")
      opt->transform(integer_validator<int64_t>("[-2^63, 2^63)", list));
    else if (type == "UINT")
      opt->transform(integer_validator<uint64_t>("[0, 2^64)", list));
    else if (type == "FLOAT")
      opt->check(finite_number_validator());
  }
  for (CLI::App* group : app.get_subcommands([](CLI::App*) { return true; })) check_numbers_strictly(*group);
}
}  // namespace

ParseOutcome parse_command_line(const char* tool, CLI::App& app, int argc, char** argv) {
  app.formatter(std::make_shared<Formatter>());
  check_numbers_strictly(app);
  try {
    app.parse(argc, argv);
    return {};
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help (CLI11 signals it by an exception)
      std::ostringstream help;
      app.exit(e, help, help);
      return {ParseOutcome::Help, help.str()};
    }
    // CLI11 says "--steps: At Most 1 required but received 2" for an option
    // given twice: said plainly.
    std::string what = e.what();
    constexpr std::string_view kTwice = ": At Most 1 required but received ";
    if (const size_t at = what.find(kTwice); at != std::string::npos) {
      // A flag pair (--hflip,--no-hflip) is one option: named as a pair,
      // or "--hflip --no-hflip" would read as "--hflip given 2 times".
      std::string name = what.substr(0, at), once = "give it once";
      if (const CLI::Option* opt = app.get_option_no_throw(name); opt && opt->get_lnames().size() == 2) {
        name = "--" + opt->get_lnames()[0] + " / --" + opt->get_lnames()[1];
        once = "give one of them once";
      }
      what = name + ": given " + what.substr(at + kTwice.size()) + " times; " + once;
    }
    return {ParseOutcome::Error, fmt::format("{} (run {} --help for the options)", what, tool)};
  }
}

int parse_and_run(const char* tool, CLI::App& app, int argc, char** argv, const std::function<int()>& run) {
  return guarded_main(tool, [&]() -> int {
    const ParseOutcome parsed = parse_command_line(tool, app, argc, argv);
    if (parsed.kind == ParseOutcome::Help) {
      fmt::print("{}", parsed.text);
      return 0;
    }
    // Exit 1 as every other bad input (not CLI11's 100+).
    if (parsed.kind == ParseOutcome::Error) throw Error(parsed.text);
    check_env_settings();  // a bad SAGAN_* variable now, not at its first use
    return run();
  });
}

ProgressLine::ProgressLine(std::string what, bool on)
    : what_(std::move(what)), on_(on), tty_(::isatty(STDERR_FILENO) != 0), t0_(std::chrono::steady_clock::now()) {}

void ProgressLine::operator()(int64_t done, int64_t total) {
  if (!on_) return;
  const int64_t tenth = total > 0 ? done * 10 / total : 10;
  if (!tty_ && tenth == last_tenth_ && done < total) return;
  last_tenth_ = tenth;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double rate = s > 0 ? static_cast<double>(done) / s : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  const auto e = static_cast<int64_t>(eta);
  std::fprintf(stderr, "%s  %s: %lld/%lld  %.0f img/s  eta %lld:%02lld:%02lld   ", tty_ ? "\r" : "", what_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total), rate, static_cast<long long>(e / 3600),
               static_cast<long long>(e / 60 % 60), static_cast<long long>(e % 60));
  if (done >= total) std::fprintf(stderr, "(%.0f s)", s);
  if (!tty_ || done >= total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

const CLI::Validator& not_empty() {
  static const CLI::Validator v(
      [](std::string& text) {
        return text.empty() ? std::string("an empty path; give one, or leave the option out") : "";
      },
      "");
  return v;
}

std::vector<int64_t> parse_class_ids(const std::string& text, int64_t K, const std::string& checkpoint) {
  std::vector<int64_t> classes;
  if (text.empty()) {
    for (int64_t k = 0; k < K; ++k) classes.push_back(k);
    return classes;
  }
  SAGAN_CHECK(K > 0, "--classes: the model in {} is unconditional", checkpoint);
  std::stringstream ss(text);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    int64_t k = -1;
    const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), k);  // decimal, no spaces
    SAGAN_CHECK(!tok.empty() && ec == std::errc() && end == tok.data() + tok.size() && k >= 0 && k < K,
                "--classes: '{}' is not a class id in [0, {})", tok, K);
    classes.push_back(k);
  }
  SAGAN_CHECK(text.back() != ',', "--classes: '{}' ends in a comma; give class ids separated by commas", text);
  return classes;
}

void check_png_output(const std::string& path, const std::string& what) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  SAGAN_CHECK(ext == ".png", "{}: images are written as PNG; give a name ending in .png", what);
  io::check_writable_file(path, what);
}

void check_output_not_input(const std::string& out, const std::string& what,
                            const std::vector<std::pair<std::string, std::string>>& inputs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (out.empty() || !fs::exists(out, ec)) return;  // a file still to be made reads nothing
  for (const auto& [name, path] : inputs) {
    if (path.empty()) continue;
    const std::string file = fs::is_directory(path, ec) ? latest_checkpoint(path) : path;
    SAGAN_CHECK(file.empty() || !fs::equivalent(out, file, ec),
                "{}: that is {} ({}), which this command reads; writing would replace it: give another file", what,
                name, file);
  }
}

Tensor sample_latents(int64_t n, int64_t z_dim, uint64_t seed, double truncation, Device device) {
  check_truncation(truncation);
  Rng gen(seed);
  std::vector<double> z(static_cast<size_t>(n * z_dim));
  for (double& v : z) {
    v = gen.normal();
    while (truncation > 0 && std::abs(v) > truncation) v = gen.normal();
  }
  return Tensor::from_vector(z, {n, z_dim}, DType::F32, device);
}

}  // namespace sagan::cli
