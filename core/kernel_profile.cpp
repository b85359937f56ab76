#include "sagan/core/kernel_profile.h"

#include <fmt/format.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

#include "sagan/core/env_setting.h"
#include "sagan/core/error.h"

namespace sagan::profile {

namespace {

using clock = std::chrono::steady_clock;

struct State {
  std::atomic<bool> on{false};
  std::atomic<bool> shapes{false};
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, Row> rows;  // by (kernel, device)
  std::optional<clock::time_point> first_call;
};

State& state() {
  static State s;
  return s;
}

thread_local int pause_depth = 0;
thread_local KernelCall* innermost = nullptr;

// Every row: with shapes there may be hundreds, and a reader greps them.
// An exit handler must not throw (that would terminate the process).
void print_at_exit() {
  try {
    const std::string text = report(1, "", std::numeric_limits<size_t>::max());
    std::fputs(text.c_str(), stderr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sagan kernel profile: not printed: %s\n", e.what());
  }
  std::fflush(stderr);
}

std::string parse_profile(const std::string& text, const std::string& what) {
  SAGAN_CHECK(text == "0" || text == "1" || text == "shapes",
              "{}: '{}' is not a profile setting (1: a row per kernel, shapes: per kernel and argument shapes, 0: off)",
              what, text);
  return text;
}
std::string profile_setting() { return env_setting<std::string>("SAGAN_PROFILE", "", parse_profile); }
// Checked when a tool starts (core/env_setting.h); parsing alone, so that
// the exit handler is installed only by the first enabled().
const EnvSettingCheck check_profile_setting([] { (void)profile_setting(); });

// SAGAN_PROFILE, read once, on the first enabled() call. The state is made
// before the exit handler is registered, so it outlives the handler.
bool from_environment() {
  static const bool on = [] {
    State& s = state();
    const std::string v = profile_setting();
    if (v.empty() || v == "0") return false;
    s.shapes = v == "shapes";
    s.on = true;
    std::atexit(print_at_exit);
    return true;
  }();
  return on;
}

std::string si(double v, int decimals) { return fmt::format("{:.{}f}", v, decimals); }

}  // namespace

bool enabled() {
  from_environment();
  return state().on.load(std::memory_order_relaxed);
}

bool by_shape() {
  from_environment();
  return state().shapes.load(std::memory_order_relaxed);
}

void set_enabled(bool on, bool shapes) {
  from_environment();
  State& s = state();
  s.shapes = shapes;
  s.on = on;
}

void reset() {
  State& s = state();
  std::lock_guard lock(s.mu);
  s.rows.clear();
  s.first_call.reset();
}

std::vector<Row> rows() {
  State& s = state();
  std::vector<Row> out;
  {
    std::lock_guard lock(s.mu);
    for (const auto& [key, row] : s.rows) out.push_back(row);
  }
  std::stable_sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
  return out;
}

double wall_seconds() {
  State& s = state();
  std::lock_guard lock(s.mu);
  return s.first_call ? std::chrono::duration<double>(clock::now() - *s.first_call).count() : 0.0;
}

std::string report(double per, const std::string& per_what, size_t max_rows) {
  SAGAN_CHECK(per > 0, "profile::report: per must be positive, got {}", per);
  const std::vector<Row> all = rows();
  const double wall = wall_seconds();
  double in_kernels = 0, flops = 0, bytes = 0;
  int64_t calls = 0;
  for (const Row& r : all) {
    in_kernels += r.seconds;
    flops += r.work.flops;
    bytes += r.work.bytes;
    calls += r.calls;
  }
  const std::string unit = per_what.empty() ? "" : " per " + per_what;
  std::string out = fmt::format(
      "\nsagan kernel profile (pid {}): {} s of wall time since the first kernel call, {} s in {} kernel calls "
      "({:.1f}%; the rest is the engine between kernels and the program around it){}\n",
      static_cast<long>(::getpid()), si(wall, 3), si(in_kernels, 3), calls, wall > 0 ? 100.0 * in_kernels / wall : 0.0,
      per_what.empty() ? "" : "; figures" + unit);
  size_t width = 6;
  for (size_t i = 0; i < all.size() && i < max_rows; ++i) width = std::max(width, all[i].kernel.size());
  out += fmt::format("{:<{}}  {:<7} {:>9} {:>10} {:>6} {:>9} {:>9} {:>8} {:>8} {:>7}\n", "kernel", width, "device",
                     "calls", "ms", "share", "us/call", "GFLOP", "GFLOP/s", "GB", "GB/s");
  auto line = [&](const std::string& name, const std::string& device, int64_t n, double sec, const Work& w) {
    const double rate = sec > 0 ? w.flops / sec / 1e9 : 0, bw = sec > 0 ? w.bytes / sec / 1e9 : 0;
    out += fmt::format("{:<{}}  {:<7} {:>9} {:>10} {:>5.1f}% {:>9} {:>9} {:>8} {:>8} {:>7}\n", name, width, device,
                       per == 1 ? fmt::format("{}", n) : si(n / per, 1), si(1e3 * sec / per, 2),
                       in_kernels > 0 ? 100.0 * sec / in_kernels : 0.0, si(n > 0 ? 1e6 * sec / n : 0, 1),
                       si(w.flops / per / 1e9, 3), si(rate, 1), si(w.bytes / per / 1e9, 3), si(bw, 1));
  };
  Work rest_work;
  double rest_sec = 0;
  int64_t rest_calls = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const Row& r = all[i];
    if (i < max_rows) {
      line(r.kernel, r.device, r.calls, r.seconds, r.work);
    } else {
      rest_sec += r.seconds;
      rest_calls += r.calls;
      rest_work.flops += r.work.flops;
      rest_work.bytes += r.work.bytes;
    }
  }
  if (all.size() > max_rows)
    line(fmt::format("({} more rows)", all.size() - max_rows), "", rest_calls, rest_sec, rest_work);
  line("total", "", calls, in_kernels, Work{flops, bytes});
  return out;
}

PauseScope::PauseScope() { ++pause_depth; }
PauseScope::~PauseScope() { --pause_depth; }
bool paused() { return pause_depth > 0; }

KernelCall::KernelCall(std::string key, std::string device, Work work)
    : key_(std::move(key)), device_(std::move(device)), work_(work), made_(clock::now()), parent_(innermost) {
  innermost = this;
}

void KernelCall::start() { start_ = clock::now(); }

void KernelCall::stop() { elapsed_ = std::chrono::duration<double>(clock::now() - start_).count(); }

// One lock a call, here: the row and the wall clock's start (the earliest
// call made) together.
KernelCall::~KernelCall() {
  innermost = parent_;
  if (elapsed_ < 0 && start_ != clock::time_point{}) stop();  // the kernel threw
  const double total = std::max(elapsed_, 0.0);
  if (parent_) parent_->children_ += total;
  State& s = state();
  std::lock_guard lock(s.mu);
  if (!s.first_call || made_ < *s.first_call) s.first_call = made_;
  Row& r = s.rows[{key_, device_}];
  if (r.calls == 0) {
    r.kernel = std::move(key_);
    r.device = std::move(device_);
  }
  ++r.calls;
  r.seconds += std::max(total - children_, 0.0);
  r.work.flops += work_.flops;
  r.work.bytes += work_.bytes;
}

}  // namespace sagan::profile
