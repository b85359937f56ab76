// The stall watchdog of data-parallel ranks (dist/watchdog.h). Each check
// sets only a lower bound on a time, and the waits are generous, so that a
// loaded CI machine cannot fail them; the end-to-end check (a stopped rank ends an
// mpirun job) is tests/mpi/check_mpi_stall.sh.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "sagan/dist/watchdog.h"

using namespace sagan::dist;
using namespace std::chrono_literals;

namespace {
// Records the one stall a watchdog reports.
struct Recorder {
  std::promise<StallWatchdog::Stall> promise;
  std::future<StallWatchdog::Stall> future = promise.get_future();
  std::function<void(const StallWatchdog::Stall&)> callback() {
    return [this](const StallWatchdog::Stall& s) { promise.set_value(s); };
  }
  bool fired_within(std::chrono::milliseconds d) { return future.wait_for(d) == std::future_status::ready; }
};
}  // namespace

TEST_CASE("watchdog: no beat within the timeout is a stall", "[watchdog]") {
  Recorder r;
  const auto start = std::chrono::steady_clock::now();
  StallWatchdog w(200ms, r.callback(), {}, 10ms);
  REQUIRE(r.fired_within(20s));
  const StallWatchdog::Stall s = r.future.get();
  CHECK(s.seconds >= 0.2);
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
  CHECK(s.error.empty());
  CHECK(s.waiting == nullptr);
}

TEST_CASE("watchdog: beats keep it quiet, and it fires once they stop", "[watchdog]") {
  Recorder r;
  StallWatchdog w(1000ms, r.callback(), {}, 10ms);
  // Beats for twice the timeout: without them it would fire half way.
  auto last = std::chrono::steady_clock::now();
  for (const auto end = last + 2000ms; last < end; last = std::chrono::steady_clock::now()) {
    w.beat();
    std::this_thread::sleep_for(10ms);
  }
  w.beat();
  last = std::chrono::steady_clock::now();
  CHECK_FALSE(r.fired_within(0ms));
  REQUIRE(r.fired_within(20s));
  CHECK(std::chrono::steady_clock::now() - last >= 1000ms);
  CHECK(r.future.get().seconds >= 1.0);
}

TEST_CASE("watchdog: the stall names the call the thread waits in", "[watchdog]") {
  CHECK(current_wait() == nullptr);
  Recorder r;
  WaitMark outer("MPI_Allreduce");
  {
    WaitMark inner("MPI_Wait");
    CHECK(std::string(current_wait()) == "MPI_Wait");
  }
  CHECK(std::string(current_wait()) == "MPI_Allreduce");
  StallWatchdog w(100ms, r.callback(), {}, 50ms);
  REQUIRE(r.fired_within(20s));
  const StallWatchdog::Stall s = r.future.get();
  REQUIRE(s.waiting != nullptr);
  CHECK(std::string(s.waiting) == "MPI_Allreduce");
  CHECK(s.seconds >= 0.2);  // a waiting rank gets two more intervals: the stuck one reports first
}

TEST_CASE("watchdog: a poller's error is reported at once, with the timeout off", "[watchdog]") {
  Recorder r;
  std::atomic<int> polls{0};
  auto link = [&polls]() -> std::string {
    if (++polls < 3) return "";
    throw std::runtime_error("NCCL: remote process exited");  // a poller that throws reports too
  };
  StallWatchdog w(0ms, r.callback(), {link}, 10ms);
  REQUIRE(r.fired_within(20s));
  const StallWatchdog::Stall s = r.future.get();
  CHECK(s.error == "NCCL: remote process exited");
  CHECK(polls.load() == 3);  // once reported, it stops polling
  std::this_thread::sleep_for(50ms);
  CHECK(polls.load() == 3);
}

TEST_CASE("watchdog: with the timeout off and no poller it never fires, and it stops at once", "[watchdog]") {
  Recorder r;
  const auto start = std::chrono::steady_clock::now();
  {
    StallWatchdog quiet(0ms, r.callback(), {}, 10ms);
    std::this_thread::sleep_for(100ms);
    StallWatchdog slow(1000ms, r.callback(), {}, 60s);  // its destructor must not wait out the interval
  }
  CHECK_FALSE(r.fired_within(0ms));
  CHECK(std::chrono::steady_clock::now() - start < 20s);
}
