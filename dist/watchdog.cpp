#include "sagan/dist/watchdog.h"

#include <atomic>
#include <exception>

namespace sagan::dist {

namespace {
std::atomic<const char*> g_wait{nullptr};
}  // namespace

WaitMark::WaitMark(const char* call) : previous_(g_wait.exchange(call)) {}
WaitMark::~WaitMark() { g_wait.store(previous_); }
const char* current_wait() { return g_wait.load(); }

StallWatchdog::StallWatchdog(std::chrono::milliseconds timeout, std::function<void(const Stall&)> on_stall,
                             std::vector<Poller> pollers, std::chrono::milliseconds interval)
    : timeout_(timeout),
      interval_(interval),
      on_stall_(std::move(on_stall)),
      pollers_(std::move(pollers)),
      last_beat_(std::chrono::steady_clock::now()),
      thread_([this] { run(); }) {}

StallWatchdog::~StallWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StallWatchdog::beat() {
  std::lock_guard<std::mutex> lock(mu_);
  last_beat_ = std::chrono::steady_clock::now();
}

void StallWatchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    // The pollers run unlocked: one may take a while (a driver call), and
    // beat() must never wait for it.
    lock.unlock();
    std::string error;
    for (const Poller& poll : pollers_) {
      try {
        error = poll();
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (!error.empty()) break;
    }
    lock.lock();
    if (stopping_) return;
    Stall stall{0.0, current_wait(), std::move(error)};
    if (stall.error.empty()) {
      const auto since = std::chrono::steady_clock::now() - last_beat_;
      const auto grace = stall.waiting ? 2 * interval_ : std::chrono::milliseconds(0);
      if (timeout_.count() == 0 || since < timeout_ + grace) continue;
      stall.seconds = std::chrono::duration<double>(since).count();
    }
    lock.unlock();
    on_stall_(stall);  // in sagan-train it ends the process; in tests it returns, and the watchdog is done
    return;
  }
}

}  // namespace sagan::dist
