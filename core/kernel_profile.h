// Where the time goes: with SAGAN_PROFILE set, every kernel call through
// Backend (core/backend.cpp, one place for every op and backend) is timed
// and charged the arithmetic and memory traffic its arguments imply
// (core/kernel_work.h), summed per kernel, and printed as a table on stderr
// when the process ends:
//
//   SAGAN_PROFILE=1       one row per kernel (unary and binary ones per op)
//   SAGAN_PROFILE=shapes  one row per kernel and argument shapes
//
// Times are exclusive: a kernel that calls others (a CPU kernel built on
// bmm) is charged its own time only. The rest of the wall time is the
// engine's own work between kernels (autograd, allocation, checks) and
// everything outside the engine. On a device other than the CPU, each
// timed call synchronises the device before and after, so that the time is
// the kernel's and not its launch's: that removes the overlap of host and
// device, and adds each launch's latency to the total. Use it to see where
// the time goes, and benchmarks for totals. Calls made while a CUDA graph
// is captured are not timed or counted (a capture queues nothing); a
// graph's replays run no kernel calls, so profile without --cuda-graph.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace sagan::profile {

// What a kernel call computes and moves, by the textbook count (a direct
// convolution's multiply-adds, whatever algorithm runs).
struct Work {
  double flops = 0;  // floating-point operations (a multiply-add is 2)
  double bytes = 0;  // bytes of the tensors passed, each read or written once
};

// On when SAGAN_PROFILE is 1 or shapes (read once; any other value is an
// error naming the variable), or after set_enabled(true). When SAGAN_PROFILE
// turns it on, the table, every row of it, goes to stderr at exit.
bool enabled();
// Rows per kernel and argument shapes (SAGAN_PROFILE=shapes).
bool by_shape();
void set_enabled(bool on, bool by_shape = false);

// Forgets every call so far and restarts the wall clock (e.g. after warm-up).
void reset();

struct Row {
  std::string kernel;  // "conv2d", "binary mul"; with shapes: "conv2d [64,3,32,32] [64,3,3,3]"
  std::string device;  // "cpu", "cuda:0"
  int64_t calls = 0;
  double seconds = 0;  // exclusive
  Work work;
};
// The rows so far, longest first, and the wall time since the first call
// after the last reset (or since enabling).
std::vector<Row> rows();
double wall_seconds();
// The table: every row's share of the time in kernels, ms, GFLOP and GB
// divided by `per` with `per_what` named in the header ("iteration"), and
// the rates. `max_rows` longest rows, the rest summed in one line.
std::string report(double per = 1, const std::string& per_what = "", size_t max_rows = 40);

// Calls inside a PauseScope (on this thread) are neither timed nor counted:
// CudaBackend::capture holds one, since a captured call queues nothing and
// the device cannot be synchronised during a capture.
class PauseScope {
 public:
  PauseScope();
  ~PauseScope();
  PauseScope(const PauseScope&) = delete;
  PauseScope& operator=(const PauseScope&) = delete;
};
bool paused();

// One kernel call being timed (Backend::run): constructed before the call,
// start() once the device is idle, stop() once it is idle again. Times
// nested calls on the same thread apart, so that each is charged its own.
class KernelCall {
 public:
  KernelCall(std::string key, std::string device, Work work);
  ~KernelCall();  // records the call, also when the kernel threw
  KernelCall(const KernelCall&) = delete;
  KernelCall& operator=(const KernelCall&) = delete;
  void start();
  void stop();

 private:
  using clock = std::chrono::steady_clock;
  std::string key_, device_;
  Work work_;
  clock::time_point made_;  // when the call began, before any synchronisation
  clock::time_point start_{};
  double elapsed_ = -1;  // set by stop()
  double children_ = 0;  // time of the calls made inside this one
  KernelCall* parent_;   // the call this one runs inside, on this thread
};

}  // namespace sagan::profile
