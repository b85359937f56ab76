// Ending a data-parallel job whose ranks stop making progress.
//
// A rank that hangs while staying alive (a stalled network or file system
// read, a node that stops responding, a GPU kernel that never ends) leaves
// the other ranks waiting in their next collective, and nothing in MPI or
// NCCL ends that wait: the job would sit until the scheduler's time limit.
// A failed NCCL link is reported only through ncclCommGetAsyncError, which
// no call on the training thread sees while it waits. So each rank runs a
// StallWatchdog: a thread that ends the job when no training step has
// finished for `timeout` (the training loop calls beat() once per step),
// or when a poller (NCCL's asynchronous error) reports a failure.
//
// The communicators mark their waits (WaitMark), so that the message can
// say whether this rank was waiting for the others or is the stuck one. A
// rank in a marked wait gets two more check intervals, so that a stuck rank
// whose watchdog still runs reports first: its message says more.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sagan::dist {

// While alive, tells a stall report that the creating thread waits in
// `call` (a string literal, e.g. "MPI_Allreduce") for the other ranks.
class WaitMark {
 public:
  explicit WaitMark(const char* call);
  ~WaitMark();
  WaitMark(const WaitMark&) = delete;
  WaitMark& operator=(const WaitMark&) = delete;

 private:
  const char* previous_;
};
// The call a thread of this process waits in now (the training thread is
// the only one that calls the communicators), or null.
const char* current_wait();

class StallWatchdog {
 public:
  struct Stall {
    double seconds;       // since the last beat
    const char* waiting;  // current_wait() then, or null
    std::string error;    // a poller's message (then seconds is 0), or empty for a timeout
  };
  // A poller returns a failure's message, or an empty string while all is
  // well; it runs on the watchdog's thread (what it throws is a failure too).
  using Poller = std::function<std::string()>;

  // on_stall runs once, on the watchdog's thread, at the first stall; in
  // sagan-train it reports and ends the process (it does not return).
  // Checks every `interval`; timeout 0: no timeout (pollers still run).
  StallWatchdog(std::chrono::milliseconds timeout, std::function<void(const Stall&)> on_stall,
                std::vector<Poller> pollers = {}, std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~StallWatchdog();  // stops and joins the thread
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  // A step finished: the clock starts again.
  void beat();

 private:
  void run();

  const std::chrono::milliseconds timeout_, interval_;
  const std::function<void(const Stall&)> on_stall_;
  const std::vector<Poller> pollers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::chrono::steady_clock::time_point last_beat_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the members above are
};

}  // namespace sagan::dist
